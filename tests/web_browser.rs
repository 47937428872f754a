//! The console in a real browser: `dvsan demo` runs as a process (a
//! station and three units on loopback), Debian's headless Chromium is
//! driven over the DevTools protocol, and the browser itself submits the
//! forms: log in, build a RAID 5 group on the unit with free disks,
//! allocate a volume to a client (after a refused size), see it listed
//! with its NBD URI, delete it after the confirmation page. A screenshot
//! of each page, and the demo's log, are kept under
//! `target/test-artifacts/web-console/`. At
//! SIGTERM the demo stops cleanly.

mod support {
    pub mod binary;
    pub mod chromium;
}

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use support::binary::dvsan;
use support::chromium::Browser;

/// `dvsan demo` as a child; stopped with SIGTERM.
struct DemoProcess {
    child: Child,
    url: String,
    password: String,
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo in `dir`; its log goes to `log`.
fn start_demo(dir: &std::path::Path, log: &std::path::Path) -> DemoProcess {
    println!("demo log: {}", log.display());
    let mut child = dvsan()
        .args(["demo", "--web-listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start dvsan demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut url = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("demo: {line}");
            let line = line.trim();
            if let Some(u) = line.strip_prefix("Console:") {
                url = Some(u.trim().to_owned());
            }
            if let Some(login) = line.strip_prefix("Log in:") {
                let (user, password) = login.split_once('/').unwrap();
                assert_eq!(user.trim(), "admin");
                let _ = tx.send((url.clone().unwrap(), password.trim().to_owned()));
            }
        }
    });
    let (url, password) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo prints its console URL and login");
    DemoProcess {
        child,
        url,
        password,
    }
}

fn artifacts() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap().join("test-artifacts/web-console")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_builds_a_group_and_allocates_and_deletes_a_volume_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = artifacts();
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    println!("screenshots and the demo's log in {}", artifacts.display());
    let demo = start_demo(&dir.path().join("demo"), &artifacts.join("demo.log"));
    let base = demo.url.trim_end_matches('/').to_owned();
    let mut b = Browser::launch(&artifacts).await;

    // A stranger is sent to the login page.
    b.goto(&format!("{base}/volumes")).await;
    assert_eq!(b.path().await, "/login");
    b.screenshot("login").await;
    b.fill(&[
        ("input[name=name]", "admin"),
        ("input[name=password]", "wrong password"),
    ])
    .await;
    b.click("form[action='/login'] button[type=submit]").await;
    assert!(b.text().await.contains("Wrong user name or password."));
    b.fill(&[
        ("input[name=name]", "admin"),
        ("input[name=password]", &demo.password),
    ])
    .await;
    b.click("form[action='/login'] button[type=submit]").await;
    assert_eq!(
        b.path().await,
        "/volumes",
        "back where the visitor was going"
    );
    let cookies = b.call("Network.getAllCookies", serde_json::json!({})).await;
    let session = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dvsan_session")
        .expect("the browser kept the session cookie")
        .clone();
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");

    b.goto(&format!("{base}/")).await;
    let text = b.text().await;
    assert!(
        text.contains("3\nonline") || text.contains("3 online"),
        "{text}"
    );
    b.screenshot("dashboard").await;

    b.goto(&format!("{base}/units")).await;
    b.screenshot("units").await;
    let san3 = b
        .eval("[...document.querySelectorAll('a')].find(a => a.textContent === 'san3.demo.test').href")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    b.goto(&san3).await;
    b.screenshot("unit-with-free-disks").await;

    // A RAID 5 group from the three free disks.
    b.fill(&[
        ("#new-group input[name=disks][value='1']", "true"),
        ("#new-group input[name=disks][value='2']", "true"),
        ("#new-group input[name=disks][value='3']", "true"),
        ("#new-group input[name=name]", "fresh"),
        ("#new-group select[name=level]", "raid5"),
    ])
    .await;
    b.click("#new-group button[type=submit]").await;
    let text = b.reload_until("fresh\traid5").await;
    assert!(text.contains("No free disk on this unit."), "{text}");
    b.screenshot("group-created").await;

    // A volume for a client: first a size the form refuses, then a good one.
    b.goto(&format!("{base}/volumes")).await;
    b.fill(&[
        ("#allocate input[name=name]", "web1"),
        ("#allocate input[name=size]", "12Q"),
        ("#allocate input[name=client]", "127.0.0.1"),
    ])
    .await;
    b.click("#allocate button[type=submit]").await;
    let text = b.text().await;
    assert!(text.contains("Size \"12Q\" is not a size"), "{text}");
    assert_eq!(
        b.eval("document.querySelector('#allocate input[name=name]').value")
            .await,
        "web1"
    );
    b.screenshot("allocation-refused").await;
    b.fill(&[("#allocate input[name=size]", "64M")]).await;
    b.click("#allocate button[type=submit]").await;
    assert_eq!(b.path().await, "/volumes/web1");
    let text = b.text().await;
    assert!(text.contains("nbd://127.0.0.1:"), "{text}");
    assert!(
        text.contains("dvsan volume attach web1 --station-url http://127.0.0.1:"),
        "{text}"
    );
    b.screenshot("volume").await;

    b.goto(&format!("{base}/volumes")).await;
    let text = b.text().await;
    assert!(text.contains("web1\t64 MiB"), "{text}");
    b.screenshot("volumes").await;
    for page in ["clients", "events", "users", "tokens"] {
        b.goto(&format!("{base}/{page}")).await;
        assert_eq!(b.path().await, format!("/{page}"));
        b.screenshot(page).await;
    }
    b.goto(&format!("{base}/clients")).await;
    assert!(b.text().await.contains("127.0.0.1\tweb1"));

    // Deleted after the confirmation page.
    b.goto(&format!("{base}/volumes/web1")).await;
    b.click("a[href='/volumes/web1/delete']").await;
    assert!(b.text().await.contains("Delete volume web1?"));
    b.screenshot("confirm-delete").await;
    b.fill(&[("input[name=confirm]", "web1")]).await;
    b.click("form[action='/volumes/web1/delete'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/volumes");
    assert!(b.text().await.contains("No volume yet."));
    b.screenshot("volume-deleted").await;

    // Log out: the console is closed again.
    b.click("form[action='/logout'] button[type=submit]").await;
    assert_eq!(b.path().await, "/login");
    b.goto(&format!("{base}/units")).await;
    assert_eq!(b.path().await, "/login");
    drop(b);

    // SIGTERM (as Ctrl-C): the units say linkDown and everything stops.
    let mut demo = demo;
    let pid = demo.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    let shots = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("png".as_ref()))
        .count();
    assert!(shots >= 14, "{shots} screenshots");
}
