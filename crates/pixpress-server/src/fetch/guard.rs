//! Which addresses a URL fetch (or an export to a user-named endpoint) may connect to: this
//! module owns the [`AddressPolicy`]. Guards against SSRF: a user-supplied URL must not
//! reach the server's own loopback, the private network it sits in, or cloud metadata services.
//!
//! Refused (unless an `--fetch-allow` CIDR lists the address):
//! - IPv4: unspecified 0.0.0.0/8, loopback 127/8 (RFC 1122), private 10/8, 172.16/12,
//!   192.168/16 (RFC 1918), carrier-grade NAT 100.64/10 (RFC 6598), link-local 169.254/16 incl.
//!   the metadata address 169.254.169.254 (RFC 3927), IETF protocol assignments 192.0.0/24,
//!   documentation nets (RFC 5737), benchmarking 198.18/15 (RFC 2544), multicast 224/4,
//!   reserved 240/4 and broadcast.
//! - IPv6: unspecified, loopback, unique-local fc00::/7 (RFC 4193), link-local fe80::/10,
//!   site-local fec0::/10, multicast ff00::/8, documentation 2001:db8::/32, and every form that
//!   embeds an IPv4 address when that IPv4 is itself refused: IPv4-mapped ::ffff:0:0/96,
//!   IPv4-compatible ::/96, 6to4 2002::/16 (RFC 3056), NAT64 64:ff9b::/96 (RFC 6052) and
//!   64:ff9b:1::/48 (RFC 8215), Teredo 2001::/32 (RFC 4380, client address inverted) and ISATAP
//!   interface ids ::5efe:a.b.c.d (RFC 5214).
//!
//! The check runs on every address DNS returns and on every redirect hop; the connection then
//! goes to exactly the address that was checked (no second lookup, so no DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        AddressPolicy { allow }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        !is_refused(ip)
    }
}

pub fn is_refused(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_refused_v4(v4),
        IpAddr::V6(v6) => is_refused_v6(v6),
    }
}

fn is_refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || (a == 100 && (b & 0xC0) == 64)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xFE) == 18)
        || a >= 240
}

fn is_refused_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return true;
    }
    if (s[0] & 0xFE00) == 0xFC00 || (s[0] & 0xFFC0) == 0xFE80 || (s[0] & 0xFFC0) == 0xFEC0 {
        return true;
    }
    if s[0] == 0x2001 && s[1] == 0x0DB8 {
        return true;
    }
    match embedded_ipv4(ip) {
        Some(v4) => is_refused_v4(v4),
        None => false,
    }
}

/// The IPv4 address an IPv6 address carries in one of the transition forms, if any.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low32 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d
    if s[0..5].iter().all(|&x| x == 0) && (s[5] == 0xFFFF || s[5] == 0) {
        return Some(low32(s[6], s[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48
    if s[0] == 0x0064 && s[1] == 0xFF9B {
        return Some(low32(s[6], s[7]));
    }
    // 6to4 2002:AABB:CCDD::/48
    if s[0] == 0x2002 {
        return Some(low32(s[1], s[2]));
    }
    // Teredo 2001:0000::/32: the client's IPv4 is the last 32 bits, inverted
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(low32(!s[6], !s[7]));
    }
    // ISATAP interface identifier ::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d
    if (s[4] == 0 || s[4] == 0x0200) && s[5] == 0x5EFE {
        return Some(low32(s[6], s[7]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        is_refused(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_ipv4() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
        ] {
            assert!(refused(a), "{a} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for a in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(!refused(a), "{a} should be allowed");
        }
    }

    #[test]
    fn refuses_ipv6_forms_hiding_internal_ipv4() {
        for a in [
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "2002:7f00:0001::1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::192.168.0.1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "fe80::5efe:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(refused(a), "{a} should be refused");
        }
        // The same transition forms around a public IPv4 are fine.
        assert!(!refused("::ffff:8.8.8.8"));
        assert!(!refused("2002:0808:0808::1"));
        assert!(!refused("64:ff9b::8.8.8.8"));
    }

    #[test]
    fn allow_list_overrides() {
        let policy = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("127.0.0.2".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
    }
}
