//! Whether a user can reach a file: every directory on the way must let them through (x), the
//! file itself be readable — decided from the mode bits, owner and group, as the kernel does
//! for a process of that user (root passes; ACLs are not read).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A user as the kernel sees them: uid and every group.
#[derive(Debug, Clone)]
pub struct Who {
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl Who {
    pub fn named(name: &str) -> Result<Who, String> {
        let user = nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .ok_or_else(|| format!("there is no user '{name}'"))?;
        let cname = std::ffi::CString::new(name).map_err(|_| format!("bad user name '{name}'"))?;
        let gids = nix::unistd::getgrouplist(&cname, user.gid)
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|_| vec![user.gid.as_raw()]);
        Ok(Who {
            name: name.to_string(),
            uid: user.uid.as_raw(),
            gids,
        })
    }
}

/// What is wanted of the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A file to read.
    Read,
    /// A directory to list and enter (a Python home).
    Enter,
}

/// The permission bits (rwx, 0..7) that apply to `who` for a file of `mode`, `uid`, `gid`.
pub fn bits_for(who: &Who, mode: u32, uid: u32, gid: u32) -> u32 {
    if who.uid == uid {
        (mode >> 6) & 7
    } else if who.gids.contains(&gid) {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// None when `who` can reach `path`; else the first place that stops them, and why.
pub fn blocked(path: &Path, who: &Who, want: Want) -> Option<String> {
    if who.uid == 0 {
        return None;
    }
    let mut walked = PathBuf::from("/");
    let parts: Vec<_> = path.components().skip(1).collect();
    for (i, c) in parts.iter().enumerate() {
        walked.push(c);
        let Ok(md) = std::fs::metadata(&walked) else {
            return Some(format!("{} does not exist", walked.display()));
        };
        let bits = bits_for(who, md.mode(), md.uid(), md.gid());
        let last = i + 1 == parts.len();
        let need = match (last, want) {
            (false, _) => 1,
            (true, Want::Read) => 4,
            (true, Want::Enter) => 5,
        };
        if bits & need != need {
            let what = if need == 1 {
                "enter"
            } else if need == 4 {
                "read"
            } else {
                "list and enter"
            };
            return Some(format!(
                "user {} cannot {what} {} (mode {:o}, owner uid {}, group gid {})",
                who.name,
                walked.display(),
                md.mode() & 0o7777,
                md.uid(),
                md.gid()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Who {
        Who {
            name: "app".into(),
            uid: 1000,
            gids: vec![1000, 33],
        }
    }

    #[test]
    fn owner_group_and_other_bits_apply_in_that_order() {
        assert_eq!(bits_for(&who(), 0o640, 1000, 0), 6);
        assert_eq!(bits_for(&who(), 0o640, 0, 33), 4);
        assert_eq!(bits_for(&who(), 0o640, 0, 0), 0);
        // the owner's bits apply even when the group's would allow more
        assert_eq!(bits_for(&who(), 0o070, 1000, 33), 0);
    }

    #[test]
    fn root_passes_and_a_missing_path_says_where() {
        let root = Who {
            name: "root".into(),
            uid: 0,
            gids: vec![0],
        };
        assert_eq!(
            blocked(Path::new("/nonexistent/x"), &root, Want::Read),
            None
        );
        let why = blocked(Path::new("/nonexistent-rwsgi/x"), &who(), Want::Read).unwrap();
        assert_eq!(why, "/nonexistent-rwsgi does not exist");
    }
}
