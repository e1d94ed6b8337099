"""quorumkv.Store: the mapping surface, durability across reopen, errors."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest

import quorumkv


@pytest.fixture
def store(tmp_path: Path) -> Iterator[quorumkv.Store]:
    with quorumkv.Store(tmp_path / "db", fsync="never") as s:
        yield s


def test_mapping_surface(store: quorumkv.Store) -> None:
    store[b"a"] = b"1"
    store["b"] = "2"  # str is UTF-8
    store["ключ"] = "значение"
    assert store["a"] == b"1"
    assert store[b"b"] == b"2"
    assert store["ключ".encode()] == "значение".encode()
    assert "a" in store and b"zz" not in store and 42 not in store
    assert len(store) == 3
    assert store.get("a") == b"1"
    assert store.get("missing") is None
    assert store.get("missing", b"dflt") == b"dflt"
    with pytest.raises(KeyError):
        store["missing"]
    del store["a"]
    with pytest.raises(KeyError):
        del store["a"]
    assert "a" not in store
    store[b"e"] = b""  # an empty value is a value
    assert store[b"e"] == b"" and b"e" in store
    with pytest.raises(TypeError):
        store[1] = b"x"  # type: ignore[index]


def test_iteration_is_in_key_order(store: quorumkv.Store) -> None:
    keys = [b"b", b"a", b"ab", b"\xff", b"\x00", b"abc", b"c"]
    for k in keys:
        store[k] = k + b"!"
    assert list(store) == sorted(keys)
    assert list(store.keys()) == sorted(keys)
    assert list(store.values()) == [k + b"!" for k in sorted(keys)]
    assert list(store.items()) == [(k, k + b"!") for k in sorted(keys)]


def test_items_with_prefix_start_end(store: quorumkv.Store) -> None:
    for k in [b"a", b"ab", b"abc", b"abd", b"ac", b"b", b"\xff\xff", b"\xff\xff\x01"]:
        store[k] = b"v"
    assert [k for k, _ in store.items(prefix="ab")] == [b"ab", b"abc", b"abd"]
    assert [k for k, _ in store.items(start="ab", end="ac")] == [b"ab", b"abc", b"abd"]
    assert [k for k, _ in store.items(prefix="ab", start="abc")] == [b"abc", b"abd"]
    assert [k for k, _ in store.items(prefix="ab", end="abd")] == [b"ab", b"abc"]
    assert [k for k, _ in store.items(start="b")] == [b"b", b"\xff\xff", b"\xff\xff\x01"]
    assert [k for k, _ in store.items(prefix=b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x01"]
    assert list(store.items(start="z", end="a")) == []
    assert list(store.keys(prefix="nothing")) == []


def test_iteration_spans_pages(store: quorumkv.Store) -> None:
    # More keys than one scan page (1024), written in a few batches of threads.
    keys = [b"k%05d" % i for i in range(2500)]
    for k in keys:
        store[k] = k
    assert len(store) == 2500
    assert list(store) == keys
    assert [k for k, _ in store.items(start=b"k01000", end=b"k02100")] == keys[1000:2100]


def test_pop_and_setdefault(store: quorumkv.Store) -> None:
    store["k"] = "v"
    assert store.pop("k") == b"v"
    assert "k" not in store
    with pytest.raises(KeyError):
        store.pop("k")
    assert store.pop("k", None) is None
    assert store.pop("k", b"d") == b"d"
    assert store.setdefault("s", "first") == b"first"
    assert store.setdefault("s", "second") == b"first"


def test_compare_and_swap(store: quorumkv.Store) -> None:
    assert store.compare_and_swap("k", None, "1")  # absent -> create
    assert not store.compare_and_swap("k", None, "2")
    assert store["k"] == b"1"
    assert not store.compare_and_swap("k", "0", "2")
    assert store.compare_and_swap("k", "1", "2")
    assert store["k"] == b"2"
    assert store.compare_and_swap("k", b"2", None)  # delete
    assert "k" not in store


def test_ttl(store: quorumkv.Store) -> None:
    start = time.monotonic()
    store.set("short", "v", ttl=0.5)
    assert "short" in store or time.monotonic() - start >= 0.5
    store.set("long", "v", ttl=timedelta(hours=1))
    store.set("plain", "v")
    time.sleep(max(0.0, start + 0.7 - time.monotonic()))
    assert "short" not in store
    assert store.get("short") is None
    assert list(store) == [b"long", b"plain"]
    with pytest.raises(ValueError):
        store.set("k", "v", ttl=0)


def test_limits_are_invalid_arguments(store: quorumkv.Store) -> None:
    with pytest.raises(quorumkv.InvalidArgumentError) as info:
        store[b"k" * 100_000] = b"v"
    assert isinstance(info.value, ValueError) and isinstance(info.value, quorumkv.Error)
    assert "exceeds the limit" in str(info.value)


def test_reopen_after_close_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with quorumkv.Store(path) as s:  # fsync="always"
        for i in range(200):
            s[b"key%03d" % i] = b"value%d" % i
        del s[b"key007"]
        s.compare_and_swap(b"key008", b"value8", b"swapped")
        s.pop(b"key009")
    with quorumkv.Store(path) as s:
        assert len(s) == 198
        assert b"key007" not in s and b"key009" not in s
        assert s[b"key008"] == b"swapped"
        assert s[b"key199"] == b"value199"
        s.snapshot()  # compact, then reopen from the snapshot
        s[b"after"] = b"snapshot"
    with quorumkv.Store(str(path), snapshot_every=None) as s:
        assert len(s) == 199 and s[b"after"] == b"snapshot" and s[b"key000"] == b"value0"


def test_closed_store_raises_closed_error(tmp_path: Path) -> None:
    s = quorumkv.Store(tmp_path / "db", fsync="never")
    s["k"] = "v"
    assert not s.closed
    s.close()
    s.close()  # idempotent
    assert s.closed
    for call in (lambda: s["k"], lambda: s.__setitem__("k", "v"), lambda: len(s), lambda: list(s), s.snapshot):
        with pytest.raises(quorumkv.ClosedError):
            call()
    assert "closed" in repr(s)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(quorumkv.InvalidArgumentError):
        quorumkv.Store(tmp_path / "db", fsync="sometimes")
    (tmp_path / "file").write_bytes(b"not a directory")
    with pytest.raises(quorumkv.StorageError):
        quorumkv.Store(tmp_path / "file")


def test_corruption_is_reported_not_hidden(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with quorumkv.Store(path) as s:
        for i in range(50):
            s[b"k%d" % i] = b"v" * 100
    segment = sorted((path / "log").glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF  # a flipped bit inside the first record, not a torn tail
    segment.write_bytes(bytes(data))
    with pytest.raises(quorumkv.CorruptionError) as info:
        quorumkv.Store(path)
    assert isinstance(info.value, quorumkv.StorageError)
    assert "corrupt" in str(info.value)


def test_threads_share_a_store_with_the_gil_released(store: quorumkv.Store) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(100):
                store[b"t%d-%03d" % (n, i)] = b"x"
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store) == 400


def test_a_rust_panic_is_an_internal_error_not_a_crash() -> None:
    from quorumkv import _native

    with pytest.raises(quorumkv.InternalError) as info:
        _native._panic_for_test("boom")
    assert "internal error (a bug in QuorumKV): boom" in str(info.value)
    assert isinstance(info.value, quorumkv.Error)
    _native._panic_for_test.__name__  # the module still works
    assert quorumkv.Simulation(nodes=3, seed=1).trace_hash()
