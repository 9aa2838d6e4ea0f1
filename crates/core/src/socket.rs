//! A group's listening socket, made by the Apache parent (root) so that it outlives any
//! supervisor, in a directory nobody but root can change.
//!
//! The socket is never reached through a path another user could swap: the directory and all
//! above it are checked (owner root, or this server's own user when Apache runs unprivileged;
//! not writable by anyone else; the directory itself again on an open descriptor), the
//! socket is born mode 0600 (umask 0177 around bind), and handed to Apache's `User` with
//! `fchownat(.., AT_SYMLINK_NOFOLLOW)` relative to that descriptor.

use crate::ipc::channel;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Why a socket directory is refused (the message says what to do).
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error(
        "the directory '{dir}' can be written by users other than root (owner uid {uid}, mode {mode:04o}): another user could replace the daemon sockets and receive the requests; use a directory only root can write to, e.g. /var/run/apache2 (or: chown root: '{dir}' && chmod go-w '{dir}')"
    )]
    Unsafe { dir: String, uid: u32, mode: u32 },
    #[error("the directory '{dir}' is not usable: {err}")]
    Io { dir: String, err: std::io::Error },
}

/// True when a directory with this owner, group and mode can only be changed by `trusted`
/// (root, or the server's own user) — group write is allowed for root's group only; a sticky
/// world-writable ancestor such as /tmp is fine (others cannot rename what is in it).
fn safe_mode(uid: u32, gid: u32, mode: u32, trusted: u32, sticky_ok: bool) -> bool {
    let owner_ok = uid == 0 || uid == trusted;
    let group_ok = mode & 0o020 == 0 || gid == 0;
    let other_ok = mode & 0o002 == 0 || (sticky_ok && mode & 0o1000 != 0);
    owner_ok && group_ok && other_ok
}

/// Checks `dir` and every directory above it; `trusted` is the uid Apache's parent runs as.
/// Symbolic links are resolved first (/var/run is one): what is checked is where the socket
/// lands. A directory that does not exist yet is fine (it will be made by root, 0755).
pub fn check_dir(dir: &Path, trusted: u32) -> Result<(), DirError> {
    use std::os::unix::fs::MetadataExt;
    let io = |d: &Path, err| DirError::Io {
        dir: d.display().to_string(),
        err,
    };
    // The deepest part of `dir` that exists, resolved, plus what is still to be made.
    let mut existing = dir;
    let mut missing = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(p), Some(n)) => {
                missing.push(n);
                existing = p;
            }
            _ => break,
        }
    }
    let resolved = existing.canonicalize().map_err(|e| io(existing, e))?;
    let mut first = missing.is_empty();
    for d in resolved.ancestors() {
        let m = std::fs::symlink_metadata(d).map_err(|e| io(d, e))?;
        // The socket directory itself must be private to root; above it, /tmp's sticky bit
        // is protection enough.
        if !safe_mode(m.uid(), m.gid(), m.mode(), trusted, !first) {
            return Err(DirError::Unsafe {
                dir: d.display().to_string(),
                uid: m.uid(),
                mode: m.mode() & 0o7777,
            });
        }
        first = false;
    }
    Ok(())
}

/// Makes (or re-makes, after a restart) the listening socket at `path`, owned by `owner` when
/// running as root, mode 0600.
pub fn bind(path: &Path, owner: Option<u32>, backlog: i32) -> Result<OwnedFd, DirError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let io = |err: std::io::Error| DirError::Io {
        dir: dir.display().to_string(),
        err,
    };
    let trusted = nix::unistd::geteuid().as_raw();
    check_dir(dir, trusted)?;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode_0755()
            .create(dir)
            .map_err(io)?;
    }
    let dfd = open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    // The checks again, on what was actually opened.
    let st = fstat(&dfd).map_err(|e| io(e.into()))?;
    if !safe_mode(st.st_uid, st.st_gid, st.st_mode, trusted, false) {
        return Err(DirError::Unsafe {
            dir: dir.display().to_string(),
            uid: st.st_uid,
            mode: st.st_mode & 0o7777,
        });
    }
    // A socket left by an earlier generation (or a crash) is replaced; anything else is not
    // ours to remove.
    if let Ok(old) = nix::sys::stat::fstatat(&dfd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        if old.st_mode & libc::S_IFMT == libc::S_IFSOCK {
            let _ = nix::unistd::unlinkat(&dfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
    // Bound by its real name (what `ss -x` shows and peers see): the directory was checked
    // above to be changeable by root only, so the name cannot be redirected meanwhile.
    let old_mask = nix::sys::stat::umask(Mode::from_bits_truncate(0o177));
    let fd = channel::listen(path, backlog);
    nix::sys::stat::umask(old_mask);
    let fd = fd.map_err(io)?;
    if let Some(uid) = owner {
        nix::unistd::fchownat(
            &dfd,
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io(e.into()))?;
    }
    // Every process of the group polls and accepts on this one socket.
    let flags =
        nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETFL).map_err(|e| io(e.into()))?;
    let mut oflags = OFlag::from_bits_truncate(flags);
    oflags.insert(OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(oflags))
        .map_err(|e| io(e.into()))?;
    Ok(fd)
}

trait Mode0755 {
    fn mode_0755(&mut self) -> &mut Self;
}

impl Mode0755 for std::fs::DirBuilder {
    fn mode_0755(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o755)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        // root's 0755 directory, /var/run/apache2
        assert!(safe_mode(0, 0, 0o40755, 0, false));
        // world-writable, no sticky bit: refused, even above
        assert!(!safe_mode(0, 0, 0o40777, 0, false));
        assert!(!safe_mode(0, 0, 0o40777, 0, true));
        // /tmp: refused as the socket directory, fine above it
        assert!(!safe_mode(0, 0, 0o41777, 0, false));
        assert!(safe_mode(0, 0, 0o41777, 0, true));
        // owned by www-data (the harness's old run dir): refused
        assert!(!safe_mode(33, 33, 0o40755, 0, false));
        // group-writable by a group other than root's: refused
        assert!(!safe_mode(0, 33, 0o40775, 0, false));
        assert!(safe_mode(0, 0, 0o40775, 0, false));
        // an unprivileged Apache owns its own runtime directory
        assert!(safe_mode(1000, 1000, 0o40700, 1000, false));
    }

    #[test]
    fn a_world_writable_directory_is_refused_with_the_fix() {
        let base = std::env::temp_dir().join(format!("rwsgi-sockdir-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let e = check_dir(&base, me).unwrap_err().to_string();
        assert!(e.contains("can be written by users other than root"), "{e}");
        assert!(e.contains("chmod go-w"), "{e}");
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_dir(&base, me).is_ok());
        // a directory that does not exist yet below a safe one
        assert!(check_dir(&base.join("sub"), me).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
