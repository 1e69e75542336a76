//! A real browser opens report.html from disk: every image and plot renders
//! and the page logs no error. Needs Debian's `chromium` (.ci/run installs it);
//! skipped where it is missing, except in CI.

use postmortem::analysis::analyze_in;
use postmortem::context::Context;
use postmortem::config::Config;
use postmortem::Run;
use std::path::Path;
use std::process::Command;

/// Appended to a copy of the report: it records what rendered, for --dump-dom.
const PROBE: &str = r#"<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  const svgs = [...document.querySelectorAll('figure svg')];
  const empty = svgs.filter(s => { const b = s.getBoundingClientRect(); return b.width < 10 || b.height < 10; }).length;
  document.body.setAttribute('data-probe', `images=${images.length} broken=${broken} plots=${svgs.length} empty=${empty}`);
});
</script>"#;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

#[test]
fn report_renders_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium for the browser test");
        eprintln!("skipped: no chromium");
        return;
    };
    let run = Run::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/dead-relu")).unwrap();
    let ctx = Context::new(&run);
    let analysis = analyze_in(&ctx, &Config::default());
    let dir = tempfile::tempdir().unwrap();
    postmortem::report::write(&ctx, &analysis, dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}\n</body>"))).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
    ];
    let url = format!("file://{}", probed.display());
    let out = Command::new(browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    let probe = dom.split("data-probe=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_else(|| panic!("no probe result; stderr: {log}"));
    let plots: usize = probe.split("plots=").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(plots >= 6, "{probe}");
    assert!(probe.contains("broken=0") && probe.contains("empty=0"), "{probe}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect();
    assert!(errors.is_empty(), "console messages: {errors:?}");
    // A screenshot, for a person to look at (kept only where asked).
    if let Some(target) = std::env::var_os("POSTMORTEM_SCREENSHOT") {
        let shot = Command::new(browser)
            .args(common)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--window-size=1100,3000", "--hide-scrollbars"])
            .arg(format!("--screenshot={}", Path::new(&target).display()))
            .arg(format!("file://{}", dir.path().join("report.html").display()))
            .output()
            .unwrap();
        assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    }
}
