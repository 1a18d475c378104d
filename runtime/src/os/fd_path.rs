//! The `/proc/self/fd/N` path of a descriptor, formatted without
//! allocating (the kernel's name for what an fd refers to).

/// Writes `/proc/self/fd/N\0` into `buf` and returns it.
pub(crate) fn format_fd_link(fd: i64, buf: &mut [u8; 40]) -> &[u8] {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = fd as u64;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = digits.len() - i;
    buf[prefix.len()..prefix.len() + n].copy_from_slice(&digits[i..]);
    buf[prefix.len() + n] = 0;
    &buf[..prefix.len() + n + 1]
}
