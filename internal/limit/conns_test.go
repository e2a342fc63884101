package limit

import (
	"io"
	"net"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce reports whether the server closed c without a byte.
func closedAtOnce(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := c.Read(make([]byte, 1))
	if n == 0 && err == io.EOF {
		return true
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false // held open
	}
	return err != nil // a reset is closed too
}

// Connections past either cap are closed as they are accepted, the
// others handed out; closing one gives its place back, to its address and
// to the process.
func TestListenerCapsConnections(t *testing.T) {
	l := New(Config{Connections: 3, AddressConnections: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := l.Listener(ln)
	defer limited.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := limited.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	next := func(what string) net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not handed out", what)
			return nil
		}
	}
	addr := ln.Addr().String()

	dialFrom(t, "127.0.0.1", addr)
	first := next("first from 127.0.0.1")
	dialFrom(t, "127.0.0.1", addr)
	next("second from 127.0.0.1")
	if !closedAtOnce(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Error("a third connection from one address was not closed at once")
	}
	dialFrom(t, "127.0.0.2", addr)
	next("first from 127.0.0.2")
	if !closedAtOnce(t, dialFrom(t, "127.0.0.3", addr)) {
		t.Error("a fourth connection in all was not closed at once")
	}
	if u := l.Usage(); u.Connections != 3 || u.ConnectionsRefused != 2 {
		t.Errorf("usage: %d open, %d refused; want 3 and 2", u.Connections, u.ConnectionsRefused)
	}

	first.Close()
	first.Close() // a second Close gives back nothing more
	c := dialFrom(t, "127.0.0.1", addr)
	next("from 127.0.0.1 after one of its own closed")
	if closedAtOnce(t, c) {
		t.Error("the connection that took the freed place was closed")
	}
	if u := l.Usage(); u.Connections != 3 {
		t.Errorf("usage: %d open after one closed and one came; want 3", u.Connections)
	}
}

// With both caps off the listener is the one given.
func TestListenerUncapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := New(Config{}).Listener(ln); got != ln {
		t.Error("a listener without caps was wrapped")
	}
}
