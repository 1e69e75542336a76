//! The example reports committed under reports/ are what postmortem writes
//! today; regenerate them with reports/regenerate.sh when this fails.

use postmortem::analysis::analyze_in;
use postmortem::context::Context;
use postmortem::config::Config;
use postmortem::Run;
mod common;
use common::files;
use std::path::{Path, PathBuf};

#[test]
fn committed_reports_are_up_to_date() {
    // Integration tests run in the package root, as reports/regenerate.sh does.
    let reports: Vec<PathBuf> = std::fs::read_dir("reports").unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    assert!(reports.len() >= 5);
    for committed in reports {
        let name = committed.file_name().unwrap().to_string_lossy().into_owned();
        let run = Run::load(&Path::new("fixtures/runs").join(&name)).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let ctx = Context::new(&run);
        postmortem::report::write(&ctx, &analyze_in(&ctx, &Config::default()), fresh.path()).unwrap();
        let (new, old) = (files(fresh.path()), files(&committed));
        assert_eq!(new.iter().map(|f| &f.0).collect::<Vec<_>>(), old.iter().map(|f| &f.0).collect::<Vec<_>>(), "{name}: files differ");
        for ((file, a), (_, b)) in new.iter().zip(&old) {
            assert!(a == b, "reports/{name}/{file} is stale: run reports/regenerate.sh");
        }
    }
}
