//! The descriptors this process inherited, made close-on-exec when it starts, so that nothing
//! runner starts (a sandboxed answer, a server, a cell) inherits what runner's own parent left
//! open. Kept with the crate's other unsafe code: a raw descriptor number is borrowed here.

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::os::fd::{BorrowedFd, RawFd};

/// Marks every descriptor above stderr close-on-exec. Descriptors stay open in runner itself
/// (a path such as `/dev/fd/3` given to a flag still works). Where the list of descriptors
/// cannot be read (no `/proc/self/fd` or `/dev/fd`), nothing is changed.
pub fn close_inherited_on_exec() {
    let listing = ["/proc/self/fd", "/dev/fd"]
        .iter()
        .find_map(|d| std::fs::read_dir(d).ok());
    let Some(listing) = listing else {
        return;
    };
    let fds: Vec<RawFd> = listing
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed as open in this process a moment ago, and the borrow lasts
        // only for this one fcntl call, which reads and sets flags. The listing's own
        // descriptor is closed by now: fcntl then fails with EBADF and the error is ignored.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = fcntl(borrowed, FcntlArg::F_GETFD).map(FdFlag::from_bits_truncate);
        if let Ok(flags) = flags {
            let _ = fcntl(borrowed, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC));
        }
    }
}
