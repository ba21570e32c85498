//! Certificates made at test time (rcgen): a CA the test Envoy trusts,
//! provider certificates for the presets' hosts, and the bad ones (another
//! CA's, an expired one) that must count as upstream failures.

use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A CA with its certificate written to `ca.pem` in `dir`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and key, as PEM files for `mock-provider --tls-cert/--tls-key`.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Leaf {
    pub fn mock_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let issuer = ca("model-router test CA");
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, issuer.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca_pem,
            issuer,
        }
    }

    /// A certificate for `host` signed by this CA.
    pub fn leaf(&self, host: &str) -> Leaf {
        self.write(host, &self.issuer, false)
    }

    /// A certificate for `host` signed by this CA that expired in 2020.
    pub fn expired_leaf(&self, host: &str) -> Leaf {
        self.write(host, &self.issuer, true)
    }

    /// A certificate for `host` signed by a CA nobody trusts.
    pub fn foreign_leaf(&self, host: &str) -> Leaf {
        self.write(host, &ca("some other CA"), false)
    }

    fn write(&self, host: &str, issuer: &CertifiedIssuer<'_, KeyPair>, expired: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, issuer).unwrap();
        let tag = format!("{host}{}", if expired { "-expired" } else { "" });
        let tag = format!("{tag}-{}", std::ptr::from_ref(issuer) as usize);
        let (cert_path, key_path) = (
            self.dir.join(format!("{tag}.pem")),
            self.dir.join(format!("{tag}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Leaf {
            cert: cert_path,
            key: key_path,
        }
    }
}
