//! Squall's own endpoints: addresses no component may connect to, whatever its grants say.
//!
//! The API on a loopback listener needs no key, so a pack granted `127.0.0.1:*` (the README's
//! own example) could otherwise call it and act as the operator: read decrypted secrets, run
//! any action, change keys and rules. The server registers every address it listens on
//! ([`crate::Host::reserve`]); outbound HTTP to a reserved port is refused when the address is
//! the reserved one, a loopback or unspecified address, or any address of this machine (a
//! listener on `0.0.0.0` answers on all of them). "Of this machine" is decided by the kernel:
//! binding a UDP socket to the address succeeds only for a local one.

use squall_core::capability::canonical;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, RwLock};

/// The set of Squall's own listening addresses, shared by every sandbox of a [`crate::Host`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ReservedEndpoints(Arc<RwLock<Vec<SocketAddr>>>);

impl ReservedEndpoints {
    /// Adds `addr` (idempotent).
    pub(crate) fn add(&self, addr: SocketAddr) {
        let mut all = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !all.contains(&addr) {
            all.push(addr);
        }
    }

    /// Refuses `target` when it would reach one of Squall's own listeners.
    ///
    /// # Errors
    /// A message naming the destination and the listener it would reach.
    pub(crate) fn check(&self, host: &str, target: SocketAddr) -> Result<(), String> {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        let ip = canonical(target.ip());
        let hit = all.iter().find(|r| {
            r.port() == target.port()
                && (canonical(r.ip()) == ip
                    || ip.is_loopback()
                    || ip.is_unspecified()
                    || is_local(ip))
        });
        match hit {
            None => Ok(()),
            Some(r) => Err(format!(
                "outbound HTTP to {host}:{} refused: {ip} port {} is Squall's own API \
                 (listening on {r}), which no grant reaches",
                target.port(),
                target.port()
            )),
        }
    }
}

/// Whether `ip` is an address of this machine (the kernel lets a socket bind to it).
fn is_local(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_listeners_are_refused_on_every_local_address() {
        let reserved = ReservedEndpoints::default();
        reserved.add("127.0.0.1:9101".parse().unwrap());
        for (target, refused) in [
            ("127.0.0.1:9101", true),
            ("127.0.0.2:9101", true),
            ("0.0.0.0:9101", true),
            ("[::1]:9101", true),
            ("[::ffff:127.0.0.1]:9101", true),
            ("127.0.0.1:9102", false),
            ("93.184.216.34:9101", false),
        ] {
            let addr: SocketAddr = target.parse().unwrap();
            assert_eq!(
                reserved.check("h", addr).is_err(),
                refused,
                "{target}: {:?}",
                reserved.check("h", addr)
            );
        }
    }

    #[test]
    fn an_unspecified_listener_is_refused_on_this_machines_addresses() {
        let reserved = ReservedEndpoints::default();
        reserved.add("0.0.0.0:9101".parse().unwrap());
        let msg = reserved
            .check("localhost", "127.0.0.1:9101".parse().unwrap())
            .unwrap_err();
        assert!(msg.contains("Squall's own API"), "{msg}");
        // Any address the kernel says is ours counts, not just loopback.
        if let Ok(sock) = UdpSocket::bind("0.0.0.0:0")
            && sock.connect("192.0.2.1:9").is_ok()
            && let Ok(own) = sock.local_addr()
            && !own.ip().is_unspecified()
        {
            assert!(
                reserved
                    .check("me", SocketAddr::new(own.ip(), 9101))
                    .is_err()
            );
        }
    }
}
