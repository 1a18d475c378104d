//! A unix stream socket to a local server (the cache server): connect,
//! send a message with a descriptor attached (SCM_RIGHTS), and receive
//! with a deadline, so a server that does not answer costs the process at
//! most that long.

use core::mem::MaybeUninit;
use core::time::Duration;

use rustix::io::IoSlice;
use rustix::net::{self, AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

use crate::os::sys::{self, AsFd, OwnedFd};

pub(crate) struct UnixStream(OwnedFd);

impl UnixStream {
    /// Connected to the socket at `path` (no NUL), replies awaited at most
    /// `wait`.
    pub(crate) fn connect(path: &[u8], wait: Duration) -> sys::Result<UnixStream> {
        let fd = net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
        let addr = SocketAddrUnix::new(path)?;
        net::connect(&fd, &addr)?;
        net::sockopt::set_socket_timeout(&fd, net::sockopt::Timeout::Recv, Some(wait))?;
        net::sockopt::set_socket_timeout(&fd, net::sockopt::Timeout::Send, Some(wait))?;
        Ok(UnixStream(fd))
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        use crate::os::sys::AsRawFd;
        self.0.as_raw_fd()
    }

    /// Sends `bytes`, with `fd` attached (to the first byte) if given.
    pub(crate) fn send(&self, bytes: &[u8], fd: Option<&OwnedFd>) -> sys::Result<()> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = fd.map(|f| [f.as_fd()]);
        if let Some(fds) = fds.as_ref() {
            if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(sys::Errno::NOBUFS);
            }
        }
        let mut at = net::sendmsg(&self.0, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL)?;
        while at < bytes.len() {
            match net::send(&self.0, &bytes[at..], SendFlags::NOSIGNAL)? {
                0 => return Err(sys::Errno::PIPE),
                n => at += n,
            }
        }
        Ok(())
    }

    /// Fills `buf` whole, keeping the descriptor that came with its first
    /// bytes if any (more than one are closed), or fails.
    pub(crate) fn recv_exact_with_fd(&self, buf: &mut [u8]) -> sys::Result<Option<OwnedFd>> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = net::RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match net::recvmsg(&self.0, &mut [rustix::io::IoSliceMut::new(buf)], &mut control, net::RecvFlags::CMSG_CLOEXEC) {
                Ok(r) => break r.bytes,
                Err(sys::Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        };
        let mut fd = None;
        for message in control.drain() {
            if let net::RecvAncillaryMessage::ScmRights(mut received) = message {
                if fd.is_none() {
                    fd = received.next();
                }
            }
        }
        if got == 0 {
            return Err(sys::Errno::CONNRESET);
        }
        self.recv_exact(&mut buf[got..])?;
        Ok(fd)
    }

    /// Whether the peer runs as this process's user.
    pub(crate) fn peer_is_this_user(&self) -> bool {
        net::sockopt::socket_peercred(&self.0).is_ok_and(|c| c.uid.as_raw() == sys::getuid())
    }

    /// Fills `buf` whole, or fails (the peer closed, or the deadline passed).
    pub(crate) fn recv_exact(&self, buf: &mut [u8]) -> sys::Result<()> {
        let mut at = 0;
        while at < buf.len() {
            match net::recv(&self.0, &mut buf[at..], net::RecvFlags::empty()) {
                Ok((0, _)) => return Err(sys::Errno::CONNRESET),
                Ok((n, _)) => at += n,
                Err(sys::Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A new anonymous file in memory holding `bytes`, to hand to another
/// process by descriptor.
pub(crate) fn memory_file<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> sys::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create("dbi-handover", rustix::fs::MemfdFlags::CLOEXEC)?;
    for piece in pieces {
        sys::write_fully(&fd, piece)?;
    }
    Ok(fd)
}
