//! Test certificates made with the `openssl` command, once per test binary:
//! a CA, a server certificate for `localhost` (so connecting to `127.0.0.1`
//! with host-name verification is a mismatch), an expired one, one for another
//! host, and a second, unrelated CA. Plus the server options that turn TLS on
//! for a private MariaDB or PostgreSQL.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct Certs {
    pub dir: PathBuf,
    /// The test CA.
    pub ca: PathBuf,
    /// `localhost`, signed by the CA, valid for ten years.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `localhost`, signed by the CA, expired in 2020.
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
    /// `wrong.example`, signed by the CA.
    pub wrong_host_cert: PathBuf,
    pub wrong_host_key: PathBuf,
    /// A CA that signed none of the above.
    pub other_ca: PathBuf,
}

/// The certificates of this test binary (made on first use).
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| make().unwrap_or_else(|e| panic!("cannot make test certificates: {e}")))
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

fn new_ca(dir: &Path, name: &str, cn: &str) -> Result<(), String> {
    let (key, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={cn}"),
    );
    let mut args = vec!["req", "-x509", "-nodes", "-days", "3650"];
    args.extend(EC);
    args.extend([
        "-keyout",
        &key,
        "-out",
        &pem,
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &args)
}

/// A leaf for `host`, signed by ca.pem; `dates` = (start, end) as
/// YYYYMMDDHHMMSSZ, or None for now + ten years.
fn new_leaf(dir: &Path, name: &str, host: &str, dates: Option<(&str, &str)>) -> Result<(), String> {
    let (key, csr, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("/CN={host}"),
    );
    let mut args = vec!["req", "-nodes"];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &args)?;
    // `openssl ca` (not `x509 -req`) because only it takes explicit dates.
    let cnf = format!(
        "[ca]\ndefault_ca = test\n[test]\ndatabase = {name}.index\nnew_certs_dir = .\n\
         serial = {name}.serial\ndefault_md = sha256\npolicy = any\ndefault_days = 3650\n\
         x509_extensions = ext\nunique_subject = no\n[any]\ncommonName = supplied\n\
         [ext]\nsubjectAltName = DNS:{host}\nbasicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n"
    );
    fs::write(dir.join(format!("{name}.cnf")), cnf).map_err(|e| e.to_string())?;
    fs::write(dir.join(format!("{name}.index")), "").map_err(|e| e.to_string())?;
    fs::write(
        dir.join(format!("{name}.serial")),
        format!("{:02X}\n", name.len() + 16),
    )
    .map_err(|e| e.to_string())?;
    let cnf_name = format!("{name}.cnf");
    let mut args = vec![
        "ca", "-batch", "-notext", "-config", &cnf_name, "-cert", "ca.pem", "-keyfile", "ca.key",
        "-in", &csr, "-out", &pem,
    ];
    if let Some((start, end)) = dates {
        args.extend(["-startdate", start, "-enddate", end]);
    }
    openssl(dir, &args)
}

fn make() -> Result<Certs, String> {
    let dir = std::env::temp_dir().join(format!("tandem-it-certs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The servers module's sweep removes it once this process is gone.
    fs::write(dir.join("owner.pid"), format!("{}\n", std::process::id()))
        .map_err(|e| e.to_string())?;
    new_ca(&dir, "ca", "Tandem Test CA")?;
    new_ca(&dir, "other-ca", "Some Other CA")?;
    new_leaf(&dir, "server", "localhost", None)?;
    new_leaf(
        &dir,
        "expired",
        "localhost",
        Some(("20200101000000Z", "20200201000000Z")),
    )?;
    new_leaf(&dir, "wrong-host", "wrong.example", None)?;
    // Readable by the unprivileged user PostgreSQL runs as.
    make_readable(&dir);
    Ok(Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        expired_cert: dir.join("expired.pem"),
        expired_key: dir.join("expired.key"),
        wrong_host_cert: dir.join("wrong-host.pem"),
        wrong_host_key: dir.join("wrong-host.key"),
        other_ca: dir.join("other-ca.pem"),
        dir,
    })
}

fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o644));
        }
    }
}

/// `mariadbd` options for TLS with `cert`/`key` (and `--require-secure-transport`
/// when `require`).
pub fn mariadb_args(cert: &Path, key: &Path, require: bool) -> Vec<String> {
    let c = certs();
    let mut args = vec![
        format!("--ssl-ca={}", c.ca.display()),
        format!("--ssl-cert={}", cert.display()),
        format!("--ssl-key={}", key.display()),
    ];
    if require {
        args.push("--require-secure-transport=ON".into());
    }
    args
}

/// A `start_private_postgres` setup: `ssl=on` with `cert`/`key` (copied into
/// the instance directory, owned by the server's user, mode 0600 as PostgreSQL
/// demands), and, when `hostssl_only`, a pg_hba.conf that refuses plaintext
/// TCP.
pub fn postgres_setup(
    cert: PathBuf,
    key: PathBuf,
    hostssl_only: bool,
) -> impl Fn(&Path, &Path) -> Vec<String> {
    move |dir: &Path, data_dir: &Path| {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let owner = fs::metadata(dir).expect("instance dir");
        let copy = |src: &Path, name: &str, mode: u32| {
            let dst = dir.join(name);
            fs::copy(src, &dst).expect("copy TLS file");
            std::os::unix::fs::chown(&dst, Some(owner.uid()), Some(owner.gid()))
                .expect("chown TLS file");
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).expect("chmod");
            dst
        };
        let cert = copy(&cert, "server.pem", 0o644);
        let key = copy(&key, "server.key", 0o600);
        let mut args = vec![
            "-c".to_string(),
            "ssl=on".to_string(),
            "-c".to_string(),
            format!("ssl_cert_file={}", cert.display()),
            "-c".to_string(),
            format!("ssl_key_file={}", key.display()),
        ];
        if hostssl_only {
            let hba = data_dir.join("pg_hba.conf");
            fs::write(
                &hba,
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n\
                 hostssl all all ::1/128 scram-sha-256\n",
            )
            .expect("write pg_hba.conf");
            args.extend(["-c".to_string(), format!("hba_file={}", hba.display())]);
        }
        args
    }
}
