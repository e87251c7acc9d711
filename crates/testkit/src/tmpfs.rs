//! A small tmpfs of a test's own: a disk that really fills up. Mounting
//! needs root (as in CI); elsewhere the test says so and is skipped,
//! unless `HERALD_TEST_TOOLS=require`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

/// A mounted tmpfs; unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `bytes` on a new directory; `None` where this process
    /// may not mount one.
    pub fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Tmpfs { dir });
        }
        assert!(
            !crate::tools::required(),
            "HERALD_TEST_TOOLS=require: mounting a tmpfs (as root) is needed for the full-disk test"
        );
        eprintln!("note: no tmpfs could be mounted (not root?): the full-disk test is skipped");
        None
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file until not a byte more fits; its path,
    /// to delete when space is to come back.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for size in [1 << 16, 1 << 10, 1] {
            let chunk = vec![0u8; size];
            while file.write_all(&chunk).and_then(|()| file.sync_data()).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: whatever still holds a file there lets go in its own time.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
