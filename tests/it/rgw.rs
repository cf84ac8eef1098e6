//! A private Ceph RGW for the S3 tests: one monitor, one in-memory (`memstore`) OSD and one
//! `radosgw`, all on loopback, in a temporary folder, with ports of their own, so tests can run
//! side by side and one of them can stop its gateway without disturbing the others. The daemons
//! run in the foreground as children of the test and are killed when the value is dropped.
//!
//! Debian's `radosgw ceph-mon ceph-osd` (Pacific) must be installed (`.ci/run` does it). Pacific
//! needs cephx even on loopback: without it `radosgw` loops on its first auth request.

use crate::redis_server::{free_port, which};
use std::io::{Read, Write};
use std::net::TcpStream;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "appgear-test-access";
pub const SECRET_KEY: &str = "appgear-test-secret-9f2c";

pub struct Rgw {
    dir: tempfile::TempDir,
    mon: Option<Child>,
    osd: Option<Child>,
    gateway: Option<Child>,
    pub port: u16,
    pub endpoint: String,
}

fn uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("a uuid from the kernel")
        .trim()
        .to_string()
}

impl Rgw {
    pub fn start() -> Rgw {
        for tool in [
            "ceph-mon",
            "ceph-osd",
            "radosgw",
            "radosgw-admin",
            "ceph",
            "monmaptool",
        ] {
            if which(tool).is_none() {
                panic!(
                    "{tool} is not installed: the S3 tests run a real Ceph RGW; install Debian's \
                     packages (apt-get install -y radosgw ceph-mon ceph-osd) or run .ci/run"
                );
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("appgear-rgw-")
            .tempdir()
            .expect("a temp dir");
        let d = dir.path();
        for sub in ["mon", "osd", "run", "log"] {
            std::fs::create_dir_all(d.join(sub)).expect("ceph folders");
        }
        let (mon_port, port) = (free_port(), free_port());
        let fsid = uuid();
        let conf = format!(
            "[global]\n\
             fsid = {fsid}\n\
             mon host = v2:127.0.0.1:{mon_port}\n\
             auth cluster required = cephx\n\
             auth service required = cephx\n\
             auth client required = cephx\n\
             osd pool default size = 1\n\
             osd pool default min size = 1\n\
             mon allow pool size one = true\n\
             osd crush chooseleaf type = 0\n\
             osd objectstore = memstore\n\
             memstore device bytes = 1073741824\n\
             osd pool default pg autoscale mode = off\n\
             mon warn on pool no redundancy = false\n\
             run dir = {d}/run\n\
             log file = {d}/log/$name.log\n\
             admin socket = {d}/run/$name.$pid.asok\n\
             keyring = {d}/keyring\n\
             mon data = {d}/mon\n\
             osd data = {d}/osd\n\
             ms bind ipv6 = false\n\
             public addr = 127.0.0.1\n\
             [client.rgw.a]\n\
             rgw frontends = beast endpoint=127.0.0.1:{port}\n\
             rgw data = {d}/rgw\n",
            d = d.display()
        );
        std::fs::write(d.join("ceph.conf"), conf).expect("ceph.conf");
        let mut rgw = Rgw {
            mon: None,
            osd: None,
            gateway: None,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let keyring = rgw.path("keyring");
        rgw.run(
            "ceph-authtool",
            &[
                "--create-keyring",
                &keyring,
                "--gen-key",
                "-n",
                "mon.",
                "--cap",
                "mon",
                "allow *",
            ],
        );
        rgw.run(
            "ceph-authtool",
            &[
                &keyring,
                "--gen-key",
                "-n",
                "client.admin",
                "--cap",
                "mon",
                "allow *",
                "--cap",
                "osd",
                "allow *",
                "--cap",
                "mgr",
                "allow *",
            ],
        );
        let monmap = rgw.path("monmap");
        rgw.run(
            "monmaptool",
            &[
                "--create",
                "--addv",
                "a",
                &format!("[v2:127.0.0.1:{mon_port}]"),
                "--fsid",
                &fsid,
                &monmap,
            ],
        );
        rgw.ceph(
            "ceph-mon",
            &[
                "--mkfs",
                "-i",
                "a",
                "--monmap",
                &monmap,
                "--keyring",
                &keyring,
            ],
        );
        rgw.mon = Some(rgw.daemon("ceph-mon", &["-i", "a"]));
        let osd_uuid = uuid();
        let id = rgw
            .ceph("ceph", &["osd", "new", &osd_uuid])
            .trim()
            .to_string();
        let osd_keyring = rgw.path("osd/keyring");
        let key = rgw.ceph(
            "ceph",
            &[
                "auth",
                "get-or-create",
                &format!("osd.{id}"),
                "mon",
                "allow profile osd",
                "osd",
                "allow *",
                "mgr",
                "allow profile osd",
            ],
        );
        std::fs::write(&osd_keyring, key).expect("osd keyring");
        let osd_data = rgw.path("osd");
        // The OSD must be created with the uuid the monitor knows, or its boot is refused.
        rgw.ceph(
            "ceph-osd",
            &[
                "-i",
                &id,
                "--mkfs",
                "--osd-uuid",
                &osd_uuid,
                "--osd-data",
                &osd_data,
                "--keyring",
                &osd_keyring,
            ],
        );
        rgw.osd = Some(rgw.daemon(
            "ceph-osd",
            &[
                "-i",
                &id,
                "--osd-data",
                &osd_data,
                "--keyring",
                &osd_keyring,
            ],
        ));
        let gw_key = rgw.ceph(
            "ceph",
            &[
                "auth",
                "get-or-create",
                "client.rgw.a",
                "mon",
                "allow rw",
                "osd",
                "allow rwx",
            ],
        );
        let mut all = std::fs::read_to_string(&keyring).expect("keyring");
        all.push_str(&gw_key);
        std::fs::write(&keyring, all).expect("keyring");
        rgw.start_gateway();
        rgw.ceph(
            "radosgw-admin",
            &[
                "user",
                "create",
                "--uid=appgear-test",
                "--display-name=appgear test",
                &format!("--access-key={ACCESS_KEY}"),
                &format!("--secret-key={SECRET_KEY}"),
            ],
        );
        rgw
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    fn conf(&self) -> String {
        self.path("ceph.conf")
    }

    /// A command that must succeed; its stdout.
    fn run(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        if !out.status.success() {
            panic!(
                "{tool} {args:?} failed ({}): {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A Ceph command with this cluster's config (60 s at most for a monitor to answer).
    fn ceph(&self, tool: &str, args: &[&str]) -> String {
        let conf = self.conf();
        let mut all = vec!["-c", conf.as_str()];
        if tool == "ceph" {
            all.extend(["--connect-timeout", "60"]);
        }
        all.extend_from_slice(args);
        self.run(tool, &all)
    }

    fn daemon(&self, tool: &str, args: &[&str]) -> Child {
        Command::new(tool)
            .args(["-f", "-c", &self.conf()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tool}: {e}"))
    }

    /// The last lines of every daemon's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("log")) else {
            return out;
        };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {}\n", e.path().display()));
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Start `radosgw` and wait (2 minutes at most) until it answers HTTP.
    pub fn start_gateway(&mut self) {
        assert!(self.gateway.is_none(), "the gateway is running already");
        self.gateway = Some(self.daemon("radosgw", &["-n", "client.rgw.a"]));
        let deadline = Instant::now() + Duration::from_secs(120);
        while http_status(self.port).is_none() {
            if Instant::now() > deadline {
                panic!(
                    "radosgw did not answer on port {} within 2 minutes\n{}",
                    self.port,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kill `radosgw` (the cluster behind it stays): S3 is down until `start_gateway`.
    pub fn stop_gateway(&mut self) {
        if let Some(mut c) = self.gateway.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while http_status(self.port).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Create a bucket (object_store has no call for it): a signed PUT by curl.
    pub fn create_bucket(&self, name: &str) {
        let url = format!("{}/{name}", self.endpoint);
        let code = self.run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PUT",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
                &format!("{ACCESS_KEY}:{SECRET_KEY}"),
                // RGW checks the payload hash header that curl does not send by itself.
                "-H",
                "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                &url,
            ],
        );
        assert_eq!(code, "200", "creating bucket {name} on {}", self.endpoint);
    }

    /// `curl` signed with the test user's keys against `/<bucket>/<key>`: (status line and
    /// headers, body).
    fn signed(&self, method: &str, bucket: &str, key: &str) -> (String, Vec<u8>) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let head = dir.path().join("head");
        let body = dir.path().join("body");
        let url = format!("{}/{bucket}/{key}", self.endpoint);
        let (head_s, body_s) = (head.display().to_string(), body.display().to_string());
        let mut args = vec![
            "-s",
            "-D",
            &head_s,
            "-o",
            &body_s,
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
        ];
        let user = format!("{ACCESS_KEY}:{SECRET_KEY}");
        args.extend(["--user", &user]);
        args.extend([
            "-H",
            "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ]);
        if method == "HEAD" {
            args.push("-I");
        }
        args.push(&url);
        self.run("curl", &args);
        (
            std::fs::read_to_string(&head).unwrap_or_default(),
            std::fs::read(&body).unwrap_or_default(),
        )
    }

    /// An object's bytes, fetched by curl (not by the client under test).
    pub fn fetch(&self, bucket: &str, key: &str) -> Vec<u8> {
        let (head, body) = self.signed("GET", bucket, key);
        assert!(head.starts_with("HTTP/1.1 200"), "GET {key}: {head}");
        body
    }

    /// A response header of `HEAD /<bucket>/<key>` (lowercase name), as RGW sends it.
    pub fn head(&self, bucket: &str, key: &str, name: &str) -> Option<String> {
        let (head, _) = self.signed("HEAD", bucket, key);
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_string())
        })
    }

    /// The environment a builder process needs to use this RGW with `bucket`.
    pub fn env(&self, bucket: &str) -> Vec<(String, String)> {
        vec![
            ("S3_ENDPOINT".into(), self.endpoint.clone()),
            ("S3_BUCKET".into(), bucket.into()),
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ]
    }
}

impl Drop for Rgw {
    fn drop(&mut self) {
        for c in [self.gateway.take(), self.osd.take(), self.mon.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The status code of `GET /` on the port, if anything answers HTTP there.
fn http_status(port: u16) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}
