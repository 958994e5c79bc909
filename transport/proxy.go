package transport

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses a comma list of IP addresses and CIDR prefixes
// (ATG_TRUSTED_PROXIES), e.g. "10.0.0.0/8, 192.168.1.7".
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		addr, err := netip.ParseAddr(item)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out, nil
}

// trustedProxy reports whether host (an IP) is one of Options.TrustedProxies.
func (a *API) trustedProxy(host string) bool {
	if len(a.opts.TrustedProxies) == 0 {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range a.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// remoteHost is the IP of the connection's peer (the whole RemoteAddr if it
// has no port).
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// forwardedFor flattens X-Forwarded-For header values into addresses, in
// order (client first).
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// requireHTTPS refuses (403 FORBIDDEN) requests that did not reach the
// service over HTTPS when Options.RequireHTTPS is set: a request passes if it
// arrived over TLS, or from a trusted proxy with X-Forwarded-Proto: https.
// X-Forwarded-Proto from anyone else is ignored. /livez and /readyz are
// exempt so that probes can reach the pod directly.
func (a *API) requireHTTPS(next http.Handler) http.Handler {
	if !a.opts.RequireHTTPS {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || r.URL.Path == "/livez" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if a.trustedProxy(remoteHost(r)) && strings.EqualFold(strings.TrimSpace(lastValue(r.Header.Values("X-Forwarded-Proto"))), "https") {
			next.ServeHTTP(w, r)
			return
		}
		WriteError(w, CodeForbidden, "HTTPS required: this service accepts requests only over TLS or through its trusted proxies", nil)
	})
}

// lastValue returns the last comma-separated value of a header (the one the
// nearest proxy added).
func lastValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	parts := strings.Split(values[len(values)-1], ",")
	return parts[len(parts)-1]
}
