//! A real Kubernetes control plane for the tests: `etcd` and `kube-apiserver` on free loopback ports.
//!
//! One control plane per test binary, started on first use and stopped when the binary exits (also
//! when a test panics). Each test gets its own `kube::Client` (a client is bound to the tokio runtime
//! that made it, and every `#[tokio::test]` has its own runtime) and its own namespace.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// The Kubernetes version the tests run against (also the version `scripts/build-k8s.sh` builds).
pub const K8S_VERSION: &str = include_str!("../../scripts/k8s-version");

/// Token of the test administrator (group `system:masters`).
pub const ADMIN_TOKEN: &str = "pterobox-test-admin-token";
/// Token of an authenticated user with no role bindings at all: RBAC must refuse it everything.
pub const NOBODY_TOKEN: &str = "pterobox-test-nobody-token";
/// The chart's ServiceAccount (release `pterobox` in `pterobox-system`): only what RBAC grants it.
pub const CHART_SA_TOKEN: &str = "pterobox-test-chart-sa-token";
pub const CHART_SA_USER: &str = "system:serviceaccount:pterobox-system:pterobox";
/// A tenant user, `tenant-alice`, with no rights until a test binds some.
pub const TENANT_TOKEN: &str = "pterobox-test-tenant-token";

const READY_TIMEOUT: Duration = Duration::from_secs(120);
const TMP_PREFIX: &str = "pterobox-cp-";

/// A running control plane, shared by every test of one test binary.
pub struct ControlPlane {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// A kubeconfig for the admin identity (usable by `kubectl --kubeconfig`).
    pub kubeconfig: PathBuf,
    /// The CA that signed the apiserver's serving certificate.
    pub ca_file: PathBuf,
    /// The directory holding `kube-apiserver`, `etcd` and `kubectl`.
    pub bin_dir: PathBuf,
    /// The temporary directory of this control plane (certificates, logs, etcd data).
    pub dir: PathBuf,
    /// How long the start took, up to `/readyz` answering `ok`.
    pub started_in: Duration,
}

/// Processes and the directory to clean up when the test binary exits.
struct Owned {
    children: Vec<Child>,
    dir: Option<PathBuf>,
}

static OWNED: Mutex<Owned> = Mutex::new(Owned { children: Vec::new(), dir: None });
static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use.
///
/// Panics with the reason (and the command that builds missing binaries) when it cannot start.
pub fn control_plane() -> &'static ControlPlane {
    let started = CONTROL_PLANE.get_or_init(|| {
        // The processes are spawned by a thread that lives as long as the test binary, so that the
        // parent-death signal set on them fires when the binary exits, not when one test ends.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("control-plane".into())
            .spawn(move || {
                let _ = tx.send(start());
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| format!("cannot spawn the control-plane thread: {e}"))?;
        rx.recv().map_err(|e| format!("control-plane thread died: {e}"))?
    });
    match started {
        Ok(cp) => cp,
        Err(e) => panic!("the test control plane did not start: {e}"),
    }
}

/// A client with the admin identity, bound to the calling test's runtime.
pub async fn admin_client() -> Client {
    client_with_token(ADMIN_TOKEN).await
}

/// A client authenticated by `token`, trusting the control plane's CA.
pub async fn client_with_token(token: &str) -> Client {
    let cp = control_plane();
    let mut config = kubeconfig_config(&cp.kubeconfig).await;
    config.auth_info.token = Some(token.to_string().into());
    Client::try_from(config).expect("a client for the test control plane")
}

async fn kubeconfig_config(path: &Path) -> Config {
    let kubeconfig = Kubeconfig::read_from(path).expect("the test kubeconfig parses");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the test kubeconfig is usable")
}

/// A kubeconfig file for `token` (for a subprocess such as the operator or kubectl).
pub fn kubeconfig_with_token(token: &str) -> PathBuf {
    let cp = control_plane();
    let path = cp.dir.join(format!("kubeconfig-{token}"));
    let text = std::fs::read_to_string(&cp.kubeconfig).expect("read the admin kubeconfig");
    std::fs::write(&path, text.replace(ADMIN_TOKEN, token)).expect("write a kubeconfig");
    path
}

/// Runs `kubectl` (the control plane's build) as the admin, with `stdin` if given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let cp = control_plane();
    let mut child = std::process::Command::new(cp.bin_dir.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kubectl");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.unwrap_or_default().as_bytes()).expect("kubectl stdin");
    }
    child.wait_with_output().expect("kubectl output")
}

/// `kubectl apply --server-side` of `text` as the admin (field manager `pterobox-tests`), with
/// `extra` arguments: (success, stdout and stderr).
pub fn kubectl_apply(text: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["apply", "--server-side", "--field-manager", "pterobox-tests", "-f", "-"];
    args.extend_from_slice(extra);
    let out = kubectl(&args, Some(text));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Creates a fresh namespace named after the test (`<prefix>-<unique suffix>`).
pub async fn test_namespace(client: &Client, prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut base: String =
        prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    base.truncate(40);
    let name = format!("{}-{}-{n}", base.trim_matches('-'), std::process::id());
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    name
}

/// Where the Kubernetes binaries are: `$PTEROBOX_K8S_BIN`, else the build script's cache.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PTEROBOX_K8S_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("PTEROBOX_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pterobox")))
        .unwrap_or_else(|| PathBuf::from(".cache/pterobox"));
    cache.join("k8s").join(K8S_VERSION.trim())
}

fn start() -> Result<ControlPlane, String> {
    let began = Instant::now();
    let bin_dir = bin_dir();
    for name in ["etcd", "kube-apiserver"] {
        if !bin_dir.join(name).is_file() {
            return Err(format!(
                "{} is missing; build the Kubernetes {} binaries with `bash scripts/build-k8s.sh`",
                bin_dir.join(name).display(),
                K8S_VERSION.trim()
            ));
        }
    }
    sweep_stale_dirs();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    lock_owned().dir = Some(dir.clone());
    // SAFETY: `stop_all` is an `extern "C" fn()` that only takes a mutex, kills children and removes
    // a directory; registering it cannot violate memory safety.
    unsafe { libc::atexit(stop_all) };

    let pki = write_pki(&dir)?;
    let etcd_url = start_etcd(&bin_dir, &dir)?;
    let port = free_port()?;
    let url = format!("https://127.0.0.1:{port}");
    start_apiserver(&bin_dir, &dir, &pki, &etcd_url, port)?;

    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &url, &pki.ca_cert)?;
    wait_ready(&kubeconfig, &dir)?;

    let cp = ControlPlane { url, kubeconfig, ca_file: pki.ca_cert, bin_dir, dir, started_in: began.elapsed() };
    // Straight to stderr, past libtest's output capture: CI logs show which control plane ran.
    let _ = writeln!(
        std::io::stderr(),
        "control plane: kube-apiserver {} + etcd on {} ready in {:.1}s",
        K8S_VERSION.trim(),
        cp.url,
        cp.started_in.as_secs_f64()
    );
    Ok(cp)
}

struct Pki {
    ca_cert: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    sa_public: PathBuf,
    sa_private: PathBuf,
    tokens: PathBuf,
}

fn write_pki(dir: &Path) -> Result<Pki, String> {
    let err = |e: rcgen::Error| format!("generating certificates: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "pterobox-test-ca");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

    let serving_key = KeyPair::generate().map_err(err)?;
    let mut serving = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(err)?;
    serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    let serving_cert = serving.signed_by(&serving_key, &ca).map_err(err)?;

    let sa_key = KeyPair::generate().map_err(err)?;

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_public: dir.join("sa.pub"),
        sa_private: dir.join("sa.key"),
        tokens: dir.join("tokens.csv"),
    };
    let write = |path: &Path, text: &str| fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()));
    write(&pki.ca_cert, &ca.pem())?;
    write(&pki.serving_cert, &serving_cert.pem())?;
    write(&pki.serving_key, &serving_key.serialize_pem())?;
    write(&pki.sa_public, &sa_key.public_key_pem())?;
    write(&pki.sa_private, &sa_key.serialize_pem())?;
    // Static tokens: token,user,uid,"group1,group2".
    write(
        &pki.tokens,
        &format!(
            "{ADMIN_TOKEN},pterobox-test-admin,uid-admin,\"system:masters\"\n{NOBODY_TOKEN},pterobox-test-nobody,uid-nobody\n\
             {CHART_SA_TOKEN},{CHART_SA_USER},uid-chart-sa,\"system:serviceaccounts,system:serviceaccounts:pterobox-system\"\n\
             {TENANT_TOKEN},tenant-alice,uid-tenant-alice\n"
        ),
    )?;
    Ok(pki)
}

fn start_etcd(bin_dir: &Path, dir: &Path) -> Result<String, String> {
    let client = format!("http://127.0.0.1:{}", free_port()?);
    let peer = format!("http://127.0.0.1:{}", free_port()?);
    let mut cmd = Command::new(bin_dir.join("etcd"));
    cmd.args([
        "--name=default",
        &format!("--data-dir={}", dir.join("etcd").display()),
        &format!("--listen-client-urls={client}"),
        &format!("--advertise-client-urls={client}"),
        &format!("--listen-peer-urls={peer}"),
        &format!("--initial-advertise-peer-urls={peer}"),
        &format!("--initial-cluster=default={peer}"),
        // Test data is thrown away: durability buys nothing and costs seconds.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]);
    spawn(cmd, &dir.join("etcd.log"))?;
    Ok(client)
}

fn start_apiserver(bin_dir: &Path, dir: &Path, pki: &Pki, etcd_url: &str, port: u16) -> Result<(), String> {
    let p = |path: &PathBuf| path.display().to_string();
    let mut cmd = Command::new(bin_dir.join("kube-apiserver"));
    cmd.args([
        &format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        &format!("--secure-port={port}"),
        &format!("--cert-dir={}", dir.join("certs").display()),
        &format!("--tls-cert-file={}", p(&pki.serving_cert)),
        &format!("--tls-private-key-file={}", p(&pki.serving_key)),
        &format!("--client-ca-file={}", p(&pki.ca_cert)),
        &format!("--token-auth-file={}", p(&pki.tokens)),
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        &format!("--service-account-key-file={}", p(&pki.sa_public)),
        &format!("--service-account-signing-key-file={}", p(&pki.sa_private)),
        // A Service range is mandatory configuration; nothing ever routes to it.
        "--service-cluster-ip-range=10.96.0.0/24",
        // No kube-controller-manager and no nodes: nothing should try to keep endpoints current.
        "--endpoint-reconciler-type=none",
        "--profiling=false",
        "--v=1",
    ]);
    spawn(cmd, &dir.join("kube-apiserver.log"))
}

/// The pids of this test binary's etcd and kube-apiserver, in that order (for their memory).
#[allow(dead_code)]
pub fn control_plane_pids() -> Vec<u32> {
    control_plane();
    lock_owned().children.iter().map(Child::id).collect()
}

/// Sends `signal` to this test binary's kube-apiserver (the last process the control plane
/// started): SIGSTOP freezes it with every connection open, SIGCONT resumes it.
pub fn signal_apiserver(signal: i32) {
    control_plane();
    let pid = lock_owned().children.last().map(Child::id).expect("the control plane runs");
    // SAFETY: kill(2) on a child this process spawned and has not reaped.
    unsafe { libc::kill(pid as i32, signal) };
}

fn spawn(mut cmd: Command, log: &Path) -> Result<(), String> {
    let out = fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
    lock_owned().children.push(child);
    Ok(())
}

fn wait_ready(kubeconfig: &Path, dir: &Path) -> Result<(), String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("runtime: {e}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    runtime.block_on(async {
        let client = Client::try_from(kubeconfig_config(kubeconfig).await).map_err(|e| format!("client: {e}"))?;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(exited) = exited_child() {
                return Err(format!("{exited} exited early\n{}", log_tails(dir)));
            }
            let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| e.to_string())?;
            match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => last = body,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("/readyz not ok after {READY_TIMEOUT:?}: {last}\n{}", log_tails(dir)))
    })
}

fn exited_child() -> Option<String> {
    let mut owned = lock_owned();
    owned.children.iter_mut().find_map(|c| match c.try_wait() {
        Ok(Some(status)) => Some(format!("pid {} ({status})", c.id())),
        _ => None,
    })
}

fn log_tails(dir: &Path) -> String {
    ["etcd.log", "kube-apiserver.log"]
        .iter()
        .map(|name| {
            let text = fs::read_to_string(dir.join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            format!("--- last lines of {name}:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_kubeconfig(path: &Path, url: &str, ca: &Path) -> Result<(), String> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\ncontexts:\n- name: test\n  context: {{cluster: test, user: admin}}\ncurrent-context: test\n",
        ca.display()
    );
    fs::write(path, text).map_err(|e| format!("write kubeconfig: {e}"))
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))
}

fn lock_owned() -> std::sync::MutexGuard<'static, Owned> {
    OWNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

extern "C" fn stop_all() {
    let mut owned = lock_owned();
    // apiserver first (it was started last), then etcd.
    for child in owned.children.iter_mut().rev() {
        // SAFETY: plain kill(2) on a pid we spawned and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    }
    for child in owned.children.iter_mut().rev() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(dir) = owned.dir.take() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Removes control-plane directories left by test binaries that were killed (their pid is gone).
fn sweep_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TMP_PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: kill with signal 0 only checks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
