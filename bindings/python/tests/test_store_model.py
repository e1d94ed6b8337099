"""Hypothesis stateful test: quorumkv.Store behaves as a dict model, across reopens too."""

from __future__ import annotations

import shutil
import tempfile
from typing import Dict, Optional

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import quorumkv

# A small alphabet makes collisions, shared prefixes and the 0xff edge likely.
keys = st.binary(min_size=0, max_size=4).map(lambda b: bytes(x % 4 * 0x55 for x in b))
values = st.binary(max_size=16)
maybe_values = st.none() | values


class StoreMatchesDict(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="quorumkv-model-")
        self.store = quorumkv.Store(self.dir, fsync="never", snapshot_every=25)
        self.model: Dict[bytes, bytes] = {}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(key=keys, value=values)
    def set(self, key: bytes, value: bytes) -> None:
        self.store[key] = value
        self.model[key] = value

    @rule(key=keys, value=values)
    def set_str(self, key: bytes, value: bytes) -> None:
        text = value.decode("latin-1")
        self.store[key.decode("latin-1")] = text
        self.model[key.decode("latin-1").encode()] = text.encode()

    @rule(key=keys)
    def get(self, key: bytes) -> None:
        assert self.store.get(key) == self.model.get(key)
        assert (key in self.store) == (key in self.model)
        if key in self.model:
            assert self.store[key] == self.model[key]

    @rule(key=keys)
    def delete(self, key: bytes) -> None:
        try:
            del self.store[key]
            deleted = True
        except KeyError:
            deleted = False
        assert deleted == (key in self.model)
        self.model.pop(key, None)

    @rule(key=keys)
    def pop(self, key: bytes) -> None:
        assert self.store.pop(key, None) == self.model.pop(key, None)

    @rule(key=keys, expected=maybe_values, new=maybe_values, use_current=st.booleans())
    def compare_and_swap(self, key: bytes, expected: Optional[bytes], new: Optional[bytes], use_current: bool) -> None:
        if use_current:
            expected = self.model.get(key)
        swapped = self.store.compare_and_swap(key, expected, new)
        assert swapped == (self.model.get(key) == expected)
        if swapped:
            if new is None:
                self.model.pop(key, None)
            else:
                self.model[key] = new

    @rule(prefix=st.none() | keys, start=st.none() | keys, end=st.none() | keys)
    def items(self, prefix: Optional[bytes], start: Optional[bytes], end: Optional[bytes]) -> None:
        expected = sorted(
            (k, v)
            for k, v in self.model.items()
            if (prefix is None or k.startswith(prefix)) and (start is None or k >= start) and (end is None or k < end)
        )
        assert list(self.store.items(prefix=prefix, start=start, end=end)) == expected

    @rule()
    def snapshot(self) -> None:
        self.store.snapshot()

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = quorumkv.Store(self.dir, fsync="never", snapshot_every=25)

    @invariant()
    def same_keys_in_order(self) -> None:
        assert list(self.store) == sorted(self.model)
        assert len(self.store) == len(self.model)


StoreMatchesDict.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_store_matches_dict = StoreMatchesDict.TestCase
