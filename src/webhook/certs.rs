//! The webhook's serving certificate: files mounted by cert-manager, or a CA and certificate the
//! operator makes once, keeps in a Secret (so that every replica serves the same one) and whose CA
//! it writes into its ValidatingWebhookConfiguration's `caBundle`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// Annotation on the Secret: the names its certificate was made for.
const HOSTS_ANNOTATION: &str = "pterobox.io/webhook-hosts";

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `tls.crt` and `tls.key` in a directory (cert-manager; its CA injector fills `caBundle`).
    Files(PathBuf),
    /// Made by the operator, kept in `namespace/secret`, its CA written into `webhook_config`.
    Managed { namespace: String, secret: String, webhook_config: String, hosts: Vec<String> },
}

/// A certificate and key in PEM.
#[derive(Clone)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: Option<String>,
}

/// Reads or makes the serving certificate.
pub async fn load(client: &kube::Client, source: &TlsSource) -> anyhow::Result<ServingCert> {
    match source {
        TlsSource::Files(dir) => {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            };
            Ok(ServingCert { cert_pem: read("tls.crt")?, key_pem: read("tls.key")?, ca_pem: None })
        }
        TlsSource::Managed { namespace, secret, hosts, .. } => managed(client, namespace, secret, hosts).await,
    }
}

async fn managed(client: &kube::Client, namespace: &str, name: &str, hosts: &[String]) -> anyhow::Result<ServingCert> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let wanted_hosts = hosts.join(",");
    for _ in 0..5 {
        let existing = api.get_opt(name).await?;
        if let Some(secret) = &existing
            && secret.annotations().get(HOSTS_ANNOTATION) == Some(&wanted_hosts)
            && let Some(cert) = from_secret(secret)
        {
            return Ok(cert);
        }
        let cert = generate(hosts)?;
        let data = BTreeMap::from([
            ("ca.crt".to_string(), ByteString(cert.ca_pem.clone().unwrap_or_default().into_bytes())),
            ("tls.crt".to_string(), ByteString(cert.cert_pem.clone().into_bytes())),
            ("tls.key".to_string(), ByteString(cert.key_pem.clone().into_bytes())),
        ]);
        let mut secret = existing.clone().unwrap_or_default();
        secret.metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            annotations: Some(BTreeMap::from([(HOSTS_ANNOTATION.to_string(), wanted_hosts.clone())])),
            resource_version: existing.as_ref().and_then(|s| s.metadata.resource_version.clone()),
            ..Default::default()
        };
        secret.type_ = Some("kubernetes.io/tls".into());
        secret.data = Some(data);
        let written = match existing {
            None => api.create(&PostParams::default(), &secret).await,
            Some(_) => api.replace(name, &PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => {
                tracing::info!(%namespace, secret = %name, hosts = %wanted_hosts, "made the webhook certificate");
                return Ok(cert);
            }
            // Another replica wrote it first: use theirs.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not settle the webhook certificate in Secret {namespace}/{name}")
}

fn from_secret(secret: &Secret) -> Option<ServingCert> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| data.get(key).and_then(|b| String::from_utf8(b.0.clone()).ok());
    Some(ServingCert { cert_pem: text("tls.crt")?, key_pem: text("tls.key")?, ca_pem: Some(text("ca.crt")?) })
}

/// A CA valid ten years and a serving certificate for `hosts` (DNS names or IP addresses).
pub fn generate(hosts: &[String]) -> anyhow::Result<ServingCert> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "pterobox-webhook-ca");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ten_years = Duration::from_secs(10 * 365 * 24 * 3600);
    let now = std::time::SystemTime::now();
    ca_params.not_before = now.into();
    ca_params.not_after = (now + ten_years).into();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().map(String::as_str).unwrap_or("pterobox"));
    params.not_before = now.into();
    params.not_after = (now + ten_years).into();
    let cert = params.signed_by(&key, &ca)?;
    Ok(ServingCert { cert_pem: cert.pem(), key_pem: key.serialize_pem(), ca_pem: Some(ca.pem()) })
}

/// Keeps `caBundle` of every webhook in `config` equal to `ca_pem` (a Helm upgrade may reset it).
pub async fn keep_ca_bundle(client: kube::Client, config: String, ca_pem: String) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let bundle = ByteString(ca_pem.into_bytes());
    loop {
        match api.get_opt(&config).await {
            Ok(Some(mut current)) => {
                let webhooks = current.webhooks.get_or_insert_with(Vec::new);
                if webhooks.iter().any(|w| w.client_config.ca_bundle.as_ref() != Some(&bundle)) {
                    for w in webhooks.iter_mut() {
                        w.client_config.ca_bundle = Some(bundle.clone());
                    }
                    match api.replace(&config, &PostParams::default(), &current).await {
                        Ok(_) => tracing::info!(%config, "wrote the webhook CA bundle"),
                        Err(e) => tracing::warn!(%config, error = %e, "cannot write the webhook CA bundle"),
                    }
                }
            }
            Ok(None) => tracing::warn!(%config, "ValidatingWebhookConfiguration not found; the webhook is not called"),
            Err(e) => tracing::warn!(%config, error = %e, "cannot read the ValidatingWebhookConfiguration"),
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

    use super::*;

    /// What the apiserver does with `caBundle`: verify the serving certificate for the host it calls.
    fn verifies(cert: &ServingCert, ca_pem: &str, host: &str) -> bool {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM")).expect("CA");
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().expect("verifier");
        let leaf = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).expect("certificate PEM");
        let name = ServerName::try_from(host.to_string()).expect("host");
        verifier.verify_server_cert(&leaf, &[], &name, &[], UnixTime::now()).is_ok()
    }

    #[test]
    fn the_certificate_is_signed_by_its_ca_for_every_host_and_serves_with_its_key() {
        let hosts = vec!["pterobox-webhook.pterobox-system.svc".to_string(), "127.0.0.1".to_string()];
        let cert = generate(&hosts).expect("generate");
        let ca = cert.ca_pem.clone().expect("a made certificate has its CA");
        for host in &hosts {
            assert!(verifies(&cert, &ca, host), "{host}");
        }
        assert!(!verifies(&cert, &ca, "evil.example.com"), "a host it was not made for");
        let other = generate(&hosts).expect("generate");
        assert!(!verifies(&cert, other.ca_pem.as_deref().expect("CA"), "127.0.0.1"), "another CA");
        // Its key is the certificate's: a TLS server can be built from the pair.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).expect("PEM")];
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth();
        assert!(config.with_single_cert(chain.clone(), key).is_ok());
        let wrong = PrivateKeyDer::from_pem_slice(other.key_pem.as_bytes()).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth();
        assert!(config.with_single_cert(chain, wrong).is_err(), "another certificate's key");
    }

    #[test]
    fn a_secret_without_every_part_is_no_certificate() {
        let cert = generate(&["127.0.0.1".to_string()]).expect("generate");
        let data = |keys: &[&str]| Secret {
            data: Some(
                keys.iter()
                    .map(|k| {
                        let pem = match *k {
                            "tls.crt" => cert.cert_pem.clone(),
                            "tls.key" => cert.key_pem.clone(),
                            _ => cert.ca_pem.clone().unwrap_or_default(),
                        };
                        (k.to_string(), ByteString(pem.into_bytes()))
                    })
                    .collect(),
            ),
            ..Secret::default()
        };
        assert!(from_secret(&data(&["tls.crt", "tls.key", "ca.crt"])).is_some());
        assert!(from_secret(&data(&["tls.crt", "tls.key"])).is_none());
        assert!(from_secret(&Secret::default()).is_none());
    }
}
