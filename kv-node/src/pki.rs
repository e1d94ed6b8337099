//! Throwaway certificates (rcgen): a CA and certificates it signs, written as PEM files. For
//! `kv-node local-cluster --tls` and the tests; a production cluster's certificates come from
//! the operator's own CA (docs/security.md shows how to make them with openssl or step).

use std::path::Path;
use std::path::PathBuf;

use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::DnType;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::Issuer;
use rcgen::KeyPair;
use rcgen::KeyUsagePurpose;

/// A certificate authority that can sign more certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca(..)")
    }
}

/// Paths of a certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Ca {
    /// A new CA named `name`, valid for ten years from yesterday.
    pub fn new(name: &str) -> std::io::Result<Ca> {
        let key = KeyPair::generate().map_err(io)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time_now();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(io)?;
        Ok(Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA certificate to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.pem)
    }

    /// Signs a certificate for `names` (DNS names or IP addresses), usable as a server and as
    /// a client, valid from `not_before_days` to `not_after_days` relative to now; writes it
    /// and its key as `<dir>/<stem>.crt` and `<dir>/<stem>.key` (the key readable by the owner
    /// only).
    pub fn issue(
        &self,
        names: &[&str],
        dir: &Path,
        stem: &str,
        not_before_days: i64,
        not_after_days: i64,
    ) -> std::io::Result<CertFiles> {
        let key = KeyPair::generate().map_err(io)?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(io)?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let now = time_now();
        params.not_before = now + time::Duration::days(not_before_days);
        params.not_after = now + time::Duration::days(not_after_days);
        let cert = params.signed_by(&key, &self.issuer).map_err(io)?;
        let files = CertFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem())?;
        write_private(&files.key, key.serialize_pem().as_bytes())?;
        Ok(files)
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Writes `bytes` to a new file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// The files of a throwaway cluster PKI ([`write_cluster_pki`]).
#[derive(Debug, Clone)]
pub struct ClusterPki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The certificate every node presents (names 127.0.0.1, ::1 and localhost).
    pub node: CertFiles,
    /// A client certificate, for `--tls-auth-clients yes`.
    pub client: CertFiles,
}

/// Makes a throwaway CA, one node certificate for 127.0.0.1/localhost and one client
/// certificate, valid for a year, in `dir` (`ca.crt`, `node.crt`/`.key`, `client.crt`/`.key`).
pub fn write_cluster_pki(dir: &Path) -> std::io::Result<ClusterPki> {
    std::fs::create_dir_all(dir)?;
    let ca = Ca::new("QuorumKV throwaway CA")?;
    let ca_path = dir.join("ca.crt");
    ca.write(&ca_path)?;
    Ok(ClusterPki {
        ca: ca_path,
        node: ca.issue(&["127.0.0.1", "::1", "localhost"], dir, "node", -1, 365)?,
        client: ca.issue(&["quorumkv-client"], dir, "client", -1, 365)?,
    })
}
