package tcp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bufSize is the size of the pooled buffers a direction copies through.
const bufSize = 32 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// pipe copies both directions between client and server until both have
// ended, then closes both. When one side ends its writing half (EOF), the
// other side's writing half is closed and the other direction may go on
// for tr.terminationDelay (without limit when negative). With an idle
// timeout the connection is closed once neither side has sent anything
// for that long. An error in one direction closes both at once.
func pipe(client, server net.Conn, tr *transport, in, out prometheus.Counter) {
	p := &piping{tr: tr}
	p.touch()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.copy(server, client, in)
	}()
	p.copy(client, server, out)
	<-done
	client.Close()
	server.Close()
}

type piping struct {
	tr *transport
	// last is the Unix nanosecond time of the last bytes read, from
	// either side; used only with an idle timeout.
	last atomic.Int64
	// ending is set once one direction has ended cleanly: the other
	// direction may go on for terminationDelay.
	ending atomic.Bool
	// endBy is the Unix nanosecond time by which the direction left must
	// end, once one has ended and the termination delay is limited; 0
	// otherwise.
	endBy atomic.Int64
}

// extend moves src's read deadline to t, unless the connection must end
// sooner.
func (p *piping) extend(src net.Conn, t time.Time) {
	src.SetReadDeadline(t)
	if end := p.endBy.Load(); end != 0 {
		src.SetReadDeadline(time.Unix(0, end))
	}
}

func (p *piping) touch() {
	if p.tr.idleTimeout > 0 {
		p.last.Store(time.Now().UnixNano())
	}
}

// copy copies from src to dst. At EOF from src it closes dst's writing
// half and gives the other direction terminationDelay to end; on an
// error, or once it is over time, it closes both connections.
func (p *piping) copy(dst, src net.Conn, count prometheus.Counter) {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	idle := p.tr.idleTimeout
	if idle > 0 {
		src.SetReadDeadline(time.Now().Add(idle))
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.touch()
			if count != nil {
				count.Add(float64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.abort(dst, src)
				return
			}
		}
		if err == nil {
			if idle > 0 {
				p.extend(src, time.Now().Add(idle))
			}
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && p.endBy.Load() == 0 && idle > 0 {
			// The other direction may have carried bytes meanwhile.
			if until := time.Unix(0, p.last.Load()).Add(idle); time.Until(until) > 0 {
				p.extend(src, until)
				continue
			}
		}
		if err != io.EOF {
			p.abort(dst, src)
			return
		}
		// src has sent everything: pass the half-close on, and give the
		// other direction (reading from dst) its delay.
		if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
			dst.Close() // no half-close: the other direction ends too
		}
		if p.ending.Swap(true) {
			return // the other direction had ended already
		}
		if d := p.tr.terminationDelay; d >= 0 {
			end := time.Now().Add(d)
			p.endBy.Store(end.UnixNano())
			dst.SetReadDeadline(end)
		}
		return
	}
}

// abort closes both connections, which ends the other direction too.
func (p *piping) abort(a, b net.Conn) {
	a.Close()
	b.Close()
}
