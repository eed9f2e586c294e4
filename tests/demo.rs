//! The README's demo command, run as a user would (with `--once`), ends with the expected table:
//! boxes with their usage, Ready servers, and the one that does not fit Rejected.

use std::process::Command;

#[test]
fn the_demo_ends_with_boxes_ready_servers_and_the_rejected_one() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("bash")
        .arg(format!("{root}/scripts/demo.sh"))
        .arg("--once")
        .env("PTEROBOX_BIN", env!("CARGO_BIN_EXE_pterobox"))
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the demo failed:\n{stdout}\n{stderr}");
    let row = |name: &str| {
        stdout.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("no row for {name}:\n{stdout}")).to_string()
    };
    assert!(row("gamebox.pterobox.io/basic").contains("3/10"), "{stdout}");
    assert!(row("gamebox.pterobox.io/basic").contains("7Gi/8Gi"), "{stdout}");
    assert!(row("gamebox.pterobox.io/starter").contains("2/3"), "{stdout}");
    assert!(row("gamebox.pterobox.io/pelican-starter").contains("1/2"), "{stdout}");
    for server in ["survival", "creative", "lobby", "rust-main", "hub"] {
        let r = row(&format!("gameserver.pterobox.io/{server} "));
        assert!(r.contains(" Ready ") && r.contains("True"), "{server}: {r}");
    }
    assert!(row("gameserver.pterobox.io/weekend").contains("Suspended"), "{stdout}");
    let modded = row("gameserver.pterobox.io/modded");
    assert!(modded.contains("Rejected") && modded.contains("False"), "{modded}");
    for panel in ["gamepanel.pterobox.io/main", "gamepanel.pterobox.io/wisp", "gamepanel.pterobox.io/pelican"] {
        assert!(row(panel).contains("True"), "{stdout}");
    }
}
