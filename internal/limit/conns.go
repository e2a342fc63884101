package limit

import (
	"net"
)

// Listener wraps ln so that every connection it hands out holds a place:
// at most Connections open at once, at most AddressConnections of them
// from one source address. Without them, connections that send one
// request and then sit idle (or send a header slowly) take a file
// descriptor each until the process has none left, and then no one is
// answered: not the API, not /healthz. A connection past either cap is
// closed as soon as it is accepted, before a byte of it is read, and
// counted in Usage().ConnectionsRefused; the accept loop never waits for
// a place. With both caps off (0), ln is returned as it is.
func (l *Limits) Listener(ln net.Listener) net.Listener {
	if l == nil || (l.cfg.Connections <= 0 && l.cfg.AddressConnections <= 0) {
		return ln
	}
	return &limitedListener{Listener: ln, l: l}
}

type limitedListener struct {
	net.Listener
	l *Limits
}

func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if release, ok := ll.l.connection(SourceAddress(c.RemoteAddr().String())); ok {
			return &heldConn{Conn: c, release: release}, nil
		}
		c.Close()
	}
}

// connection admits one connection from addr, or refuses it.
func (l *Limits) connection(addr string) (release func(), ok bool) {
	if !take(&l.conns, int64(l.cfg.Connections), 1) {
		l.connsRefused.Add(1)
		return nil, false
	}
	if l.cfg.AddressConnections > 0 && !l.connAddresses.take(addr, l.cfg.AddressConnections) {
		l.conns.Add(-1)
		l.connsRefused.Add(1)
		return nil, false
	}
	return once(func() {
		l.conns.Add(-1)
		if l.cfg.AddressConnections > 0 {
			l.connAddresses.give(addr)
		}
	}), true
}

// SourceAddress is the IP address of a remote address (host:port), or the
// address itself when it has no port: what the per-address limits, and
// the log's "source", count by.
func SourceAddress(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// heldConn gives its place back when it is closed.
type heldConn struct {
	net.Conn
	release func()
}

func (c *heldConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite half-closes the TCP connection, as net/http does before it
// closes one whose request body it left unread, so that the client reads
// the answer instead of a reset.
func (c *heldConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
