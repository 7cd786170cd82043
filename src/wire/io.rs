//! Packet framing over one TCP stream (plain or TLS, see `stream`): a read
//! buffer we parse packets out of and a write buffer we flush explicitly, so a
//! whole response leaves in one write.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stream::Stream;
use super::MAX_PAYLOAD;

/// Flush the write buffer once it holds this much, even mid-response, so large
/// results stream through with bounded memory.
const FLUSH_THRESHOLD: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// A read goes ahead without growing the buffer while this much room is
/// left: `reserve(READ_CHUNK)` on every read reclaimed or reallocated the
/// buffer on nearly every statement (a short read leaves less than a whole
/// chunk free), which showed in the per-statement profile.
const MIN_READ_ROOM: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed by peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("packet of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

impl WireError {
    /// True when the peer went away (as opposed to sending garbage).
    pub fn is_disconnect(&self) -> bool {
        match self {
            WireError::Closed => true,
            WireError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// One logical packet: physical packets of `MAX_PAYLOAD` bytes joined together.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Sequence id of the last physical packet; the reply continues from it.
    pub seq: u8,
    pub payload: Bytes,
}

/// Header of the next buffered physical packet, for verbatim relaying.
#[derive(Debug, Clone, Copy)]
pub struct RawHeader {
    pub len: usize,
    pub seq: u8,
}

pub struct PacketIo {
    stream: Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    max_packet: usize,
}

impl PacketIo {
    pub fn new(stream: TcpStream, max_packet: usize) -> Self {
        let _ = stream.set_nodelay(true);
        Self::with_stream(Stream::Plain(stream), max_packet)
    }

    pub fn with_stream(stream: Stream, max_packet: usize) -> Self {
        Self {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
            max_packet,
        }
    }

    /// Moves the socket to the current runtime's event loop (a pooled
    /// connection leased by a session on another thread, see
    /// `crate::workers`), keeping whatever is buffered. A TLS connection
    /// cannot move (its state lives in the stream): the caller opens a new
    /// connection instead.
    pub fn rehome(self) -> std::io::Result<Self> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "an encrypted connection stays on its thread",
            ));
        };
        let stream = Stream::Plain(TcpStream::from_std(tcp.into_std()?)?);
        Ok(Self { stream, ..self })
    }

    pub fn stream(&self) -> Option<&TcpStream> {
        self.stream.tcp()
    }

    /// Answers a client's SSLRequest: runs the server side of the TLS
    /// handshake on this connection. Bytes already buffered behind the
    /// SSLRequest go to the TLS handshake (they are the ClientHello), never
    /// to the MySQL protocol, so nothing sent in plaintext is taken as sent
    /// over TLS.
    pub async fn accept_tls(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
    ) -> Result<(), WireError> {
        if !self.wbuf.is_empty() {
            return Err(WireError::Malformed("unsent output before TLS"));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(WireError::Malformed(
                "SSL request on an encrypted connection",
            ));
        };
        let prefix = std::mem::take(&mut self.rbuf);
        let tls = acceptor
            .accept(super::stream::Rewind::new(prefix, tcp))
            .await?;
        self.stream = Stream::Server(Box::new(tls));
        Ok(())
    }

    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    pub fn tls(&self) -> &Stream {
        &self.stream
    }

    /// The plain TCP stream, to start TLS on it. Refused (None) when the
    /// stream is already TLS or bytes are buffered either way: they would be
    /// plaintext the peer sent after asking for TLS (an injection attempt) or
    /// output not sent yet.
    pub fn into_plain(self) -> Option<TcpStream> {
        if !self.rbuf.is_empty() || !self.wbuf.is_empty() {
            return None;
        }
        match self.stream {
            Stream::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// True when bytes are buffered that no packet has consumed yet.
    pub fn has_buffered_input(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// Room for the next read: a whole chunk, once less than
    /// `MIN_READ_ROOM` is left.
    fn make_read_room(&mut self) {
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ_ROOM {
            self.rbuf.reserve(READ_CHUNK);
        }
    }

    async fn read_more(&mut self) -> Result<(), WireError> {
        self.make_read_room();
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(WireError::Closed);
        }
        Ok(())
    }

    fn buffered_header(&self) -> Option<RawHeader> {
        header_of(&self.rbuf)
    }

    /// True when a whole physical packet is buffered (reading it won't block).
    pub fn has_complete_packet(&self) -> bool {
        self.buffered_header()
            .is_some_and(|h| self.rbuf.len() >= 4 + h.len)
    }

    /// Waits until one whole physical packet is buffered and returns its header.
    pub async fn fill_physical(&mut self) -> Result<RawHeader, WireError> {
        loop {
            if let Some(h) = self.buffered_header() {
                if self.rbuf.len() >= 4 + h.len {
                    return Ok(h);
                }
            }
            self.read_more().await?;
        }
    }

    /// Payload of the buffered physical packet described by `h`.
    pub fn raw_payload(&self, h: RawHeader) -> &[u8] {
        &self.rbuf[4..4 + h.len]
    }

    /// Moves the buffered physical packet `h` (header included) to `dst`'s write
    /// buffer unchanged, flushing `dst` when its buffer is large.
    pub async fn relay_physical(
        &mut self,
        h: RawHeader,
        dst: &mut PacketIo,
    ) -> Result<(), WireError> {
        dst.wbuf.extend_from_slice(&self.rbuf[..4 + h.len]);
        self.rbuf.advance(4 + h.len);
        if dst.wbuf.len() >= FLUSH_THRESHOLD {
            dst.flush().await?;
        }
        Ok(())
    }

    /// The input buffered and not consumed yet.
    pub fn buffered_input(&self) -> &[u8] {
        &self.rbuf
    }

    /// Shows the complete physical packets buffered from byte `start` on
    /// (a packet boundary), in order, to `visit` (header and payload), which
    /// returns whether to go on past the packet it was shown. Returns where
    /// the packets passed end (headers included): they stay buffered for
    /// `forward`. A packet `visit` fails on ends the walk with its error.
    pub fn visit_buffered_packets<E>(
        &self,
        start: usize,
        mut visit: impl FnMut(RawHeader, &[u8]) -> Result<bool, E>,
    ) -> Result<usize, E> {
        let mut end = start;
        while let Some(h) = self.rbuf.get(end..).and_then(header_of) {
            let Some(payload) = self.rbuf.get(end + 4..end + 4 + h.len) else {
                break;
            };
            let go_on = visit(h, payload)?;
            end += 4 + h.len;
            if !go_on {
                break;
            }
        }
        Ok(end)
    }

    /// Passes the first `bytes` buffered input bytes (whole packets, as
    /// `visit_buffered_packets` counted them) on to `dst` unchanged. While
    /// `dst` has nothing waiting to be sent they are written to it straight
    /// from this read buffer, as a forwarding hop sends what it received,
    /// with no copy in between; otherwise, or with `hold` (the caller
    /// answers later, after a mirror's confirmation), they join `dst`'s
    /// write buffer, which is flushed once past the threshold. Errors are
    /// `dst`'s.
    pub async fn forward(
        &mut self,
        dst: &mut PacketIo,
        bytes: usize,
        hold: bool,
    ) -> Result<(), WireError> {
        let Some(out) = self.rbuf.get(..bytes) else {
            return Err(WireError::Malformed("forwarding more than is buffered"));
        };
        if out.is_empty() {
            return Ok(());
        }
        if !hold && dst.wbuf.is_empty() {
            dst.stream.write_all(out).await?;
        } else {
            dst.wbuf.extend_from_slice(out);
            dst.flush_if_full().await?;
        }
        self.rbuf.advance(bytes);
        Ok(())
    }

    /// Flushes once the write buffer is past the threshold (a large result
    /// streams through with bounded memory).
    pub async fn flush_if_full(&mut self) -> Result<(), WireError> {
        if self.wbuf.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    /// Reads one logical packet, joining continuation packets.
    pub async fn read_packet(&mut self) -> Result<Packet, WireError> {
        let h = self.fill_physical().await?;
        if h.len < MAX_PAYLOAD {
            let mut frame = self.rbuf.split_to(4 + h.len);
            frame.advance(4);
            return Ok(Packet {
                seq: h.seq,
                payload: frame.freeze(),
            });
        }
        let mut joined = BytesMut::new();
        let mut h = h;
        loop {
            if joined.len() + h.len > self.max_packet {
                return Err(WireError::TooLarge {
                    len: joined.len() + h.len,
                    max: self.max_packet,
                });
            }
            joined.extend_from_slice(&self.rbuf[4..4 + h.len]);
            self.rbuf.advance(4 + h.len);
            if h.len < MAX_PAYLOAD {
                return Ok(Packet {
                    seq: h.seq,
                    payload: joined.freeze(),
                });
            }
            h = self.fill_physical().await?;
        }
    }

    /// Buffers `payload` as one logical packet starting at sequence id `seq`,
    /// splitting it as the protocol requires. Returns the next sequence id.
    pub fn write_packet(&mut self, mut seq: u8, payload: &[u8]) -> u8 {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_PAYLOAD);
            let len = (n as u32).to_le_bytes();
            self.wbuf.extend_from_slice(&[len[0], len[1], len[2], seq]);
            self.wbuf.extend_from_slice(&rest[..n]);
            seq = seq.wrapping_add(1);
            rest = &rest[n..];
            if n < MAX_PAYLOAD {
                return seq;
            }
        }
    }

    /// Buffers one logical packet like `write_packet`, then flushes once the
    /// buffer is past the threshold, so a response built packet by packet
    /// streams with bounded memory.
    pub async fn write_packet_bounded(&mut self, seq: u8, payload: &[u8]) -> Result<u8, WireError> {
        let next = self.write_packet(seq, payload);
        if self.wbuf.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(next)
    }

    /// Bytes written but not flushed yet.
    pub fn buffered_output(&self) -> usize {
        self.wbuf.len()
    }

    pub async fn flush(&mut self) -> Result<(), WireError> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
            // Don't keep a huge buffer alive after one large result.
            if self.wbuf.capacity() > 4 * FLUSH_THRESHOLD {
                self.wbuf = BytesMut::with_capacity(16 * 1024);
            }
        }
        Ok(())
    }

    pub async fn write_and_flush(&mut self, seq: u8, payload: &[u8]) -> Result<u8, WireError> {
        let next = self.write_packet(seq, payload);
        self.flush().await?;
        Ok(next)
    }

    /// Non-blocking liveness probe for an idle connection: a closed socket reads
    /// EOF at once, a live idle one would block. Unexpected bytes also count as
    /// not reusable.
    pub fn is_idle_and_alive(&self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        match &self.stream {
            Stream::Plain(s) => {
                let mut probe = [0u8; 1];
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
            // Under TLS, peek at the socket without consuming: any record (a
            // close_notify alert, say) or EOF means the connection is not idle.
            tls => {
                let Some(tcp) = tls.tcp() else { return false };
                let mut probe = [0u8; 1];
                let mut buf = tokio::io::ReadBuf::new(&mut probe);
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                tcp.poll_peek(&mut cx, &mut buf).is_pending()
            }
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }

    /// Flushes what is buffered, then closes with a reset (SO_LINGER 0), as
    /// a server does to a connection it timed out.
    pub async fn abort(mut self) {
        let _ = self.flush().await;
        if let Some(tcp) = self.stream.tcp() {
            let _ = tcp.set_zero_linger();
        }
    }

    /// Whether the connection runs TLS (its session may hold decrypted input
    /// that the socket's readiness no longer announces).
    pub fn is_encrypted(&self) -> bool {
        !matches!(self.stream, Stream::Plain(_))
    }

    /// Resolves when the socket has something to read (data, EOF or an
    /// error). A readiness check only: no system call while nothing arrived.
    pub async fn readable(&self) {
        // None: a failed TLS upgrade; nothing will ever arrive and the next
        // read reports the connection gone.
        if let Some(tcp) = self.stream.tcp() {
            let _ = tcp.readable().await;
        }
    }

    /// `readable` as a poll, for waiting on several sockets at once: the
    /// waker goes in the socket's single reader slot (this session's task
    /// is its only reader), so nothing is registered or removed per wait.
    pub fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        match self.stream.tcp() {
            Some(tcp) => tcp.poll_read_ready(cx).map(|_| ()),
            None => std::task::Poll::Ready(()),
        }
    }

    /// After `readable`: one non-blocking read says what the peer did (a
    /// stale readiness event reads nothing). Bytes read stay in the read
    /// buffer for the next `read_packet` (or `relay_buffered`).
    pub fn check_idle_peer(&mut self) -> PeerState {
        self.make_read_room();
        let read = match &mut self.stream {
            Stream::Plain(tcp) => tcp.try_read_buf(&mut self.rbuf),
            // Under TLS the socket's bytes are records: read through the
            // session without waiting (a waker-less poll; `readable` waits
            // on the socket itself), keeping decrypted bytes.
            tls => {
                use tokio::io::AsyncRead;
                let mut chunk = [0u8; 4096];
                let mut buf = tokio::io::ReadBuf::new(&mut chunk);
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                match std::pin::Pin::new(tls).poll_read(&mut cx, &mut buf) {
                    std::task::Poll::Ready(Ok(())) => {
                        self.rbuf.extend_from_slice(buf.filled());
                        Ok(buf.filled().len())
                    }
                    std::task::Poll::Ready(Err(e)) => Err(e),
                    std::task::Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
                }
            }
        };
        match read {
            Ok(0) => PeerState::Closed,
            Ok(_) => PeerState::Sent,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => PeerState::Idle,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => PeerState::Reset,
            Err(_) => PeerState::Closed,
        }
    }

    /// After the peer sent something unprompted: waits (at most `limit`) for
    /// it to close the connection, keeping what else it sends. Returns how it
    /// closed, or `Sent` when it did not.
    pub async fn wait_peer_close(&mut self, limit: std::time::Duration) -> PeerState {
        let closed = async {
            loop {
                self.readable().await;
                match self.check_idle_peer() {
                    PeerState::Idle | PeerState::Sent => continue,
                    end => return end,
                }
            }
        };
        tokio::time::timeout(limit, closed)
            .await
            .unwrap_or(PeerState::Sent)
    }

    /// Moves every buffered input byte to `dst`'s write buffer unchanged.
    pub fn relay_buffered(&mut self, dst: &mut PacketIo) {
        dst.wbuf.extend_from_slice(&self.rbuf);
        self.rbuf.clear();
    }
}

/// The header at the start of `buf`, if four bytes are there.
fn header_of(buf: &[u8]) -> Option<RawHeader> {
    let h = buf.get(..4)?;
    Some(RawHeader {
        len: usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16,
        seq: h[3],
    })
}

/// What an idle peer did, seen by `PacketIo::check_idle_peer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Nothing: the readiness event was stale.
    Idle,
    /// It sent bytes although no command was outstanding.
    Sent,
    /// It closed the connection (FIN).
    Closed,
    /// It reset the connection (RST).
    Reset,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Two connected `PacketIo`s and the raw peer of the first.
    async fn pair() -> (PacketIo, TcpStream, PacketIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, a_peer) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (b, b_peer) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            PacketIo::new(a.unwrap(), 1 << 20),
            a_peer.unwrap().0,
            PacketIo::new(b.unwrap(), 1 << 20),
            b_peer.unwrap().0,
        )
    }

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        let mut p = vec![len[0], len[1], len[2], seq];
        p.extend_from_slice(payload);
        p
    }

    async fn buffer_all(src: &mut PacketIo, len: usize) {
        while src.rbuf.len() < len {
            src.read_more().await.unwrap();
        }
    }

    /// Reads exactly `n` bytes from a raw peer.
    async fn read_exact(peer: &mut TcpStream, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = vec![0; n];
        peer.read_exact(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn visit_passes_whole_packets_up_to_where_it_stops() {
        let (mut src, mut src_peer, _dst, _dst_peer) = pair().await;
        let mut sent = Vec::new();
        for (seq, body) in [(1u8, &b"one"[..]), (2, b"two"), (3, b"three")] {
            sent.extend(packet(seq, body));
        }
        // A fourth packet, incomplete: never shown.
        sent.extend_from_slice(&[9, 0, 0, 4, b'p']);
        src_peer.write_all(&sent).await.unwrap();
        buffer_all(&mut src, sent.len()).await;

        let mut seen = Vec::new();
        let bytes = src
            .visit_buffered_packets(0, |h, payload| {
                seen.push((h.seq, payload.to_vec()));
                Ok::<_, WireError>(h.seq < 2)
            })
            .unwrap();
        assert_eq!(
            bytes,
            7 + 7,
            "stops after the packet visit declined to pass"
        );
        assert_eq!(seen, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
        assert_eq!(&src.rbuf[..], &sent[..], "visiting consumes nothing");

        let all = src
            .visit_buffered_packets(0, |_, _| Ok::<_, WireError>(true))
            .unwrap();
        assert_eq!(all, 7 + 7 + 9, "the incomplete packet is not counted");
        let mut rest = Vec::new();
        let from_second = src
            .visit_buffered_packets(7, |h, _| {
                rest.push(h.seq);
                Ok::<_, WireError>(true)
            })
            .unwrap();
        assert_eq!(
            (from_second, rest),
            (7 + 7 + 9, vec![2, 3]),
            "a walk from a later packet"
        );
    }

    #[tokio::test]
    async fn a_packet_visit_fails_on_ends_the_walk_with_its_error() {
        let (mut src, mut src_peer, _dst, _dst_peer) = pair().await;
        let mut sent = packet(1, b"ok");
        sent.extend(packet(2, b"bad"));
        src_peer.write_all(&sent).await.unwrap();
        buffer_all(&mut src, sent.len()).await;
        let r = src.visit_buffered_packets(0, |h, _| match h.seq {
            1 => Ok(true),
            _ => Err(WireError::Malformed("refused")),
        });
        assert!(matches!(r, Err(WireError::Malformed("refused"))));
        assert_eq!(&src.rbuf[..], &sent[..]);
    }

    #[tokio::test]
    async fn forward_sends_from_the_read_buffer_or_appends_behind_pending_output() {
        let (mut src, mut src_peer, mut dst, mut dst_peer) = pair().await;
        let mut sent = packet(1, b"first");
        sent.extend(packet(2, b"second"));
        sent.extend_from_slice(&[5, 0, 0]); // a header cut short
        src_peer.write_all(&sent).await.unwrap();
        buffer_all(&mut src, sent.len()).await;

        // Nothing pending at dst: the packets go out at once, unbuffered.
        src.forward(&mut dst, 9, false).await.unwrap();
        assert!(dst.wbuf.is_empty());
        assert_eq!(read_exact(&mut dst_peer, 9).await, &sent[..9]);

        // Held: they wait in dst's buffer, behind what is already there.
        dst.write_packet(7, b"x");
        src.forward(&mut dst, 10, true).await.unwrap();
        let mut expected = packet(7, b"x");
        expected.extend_from_slice(&sent[9..19]);
        assert_eq!(&dst.wbuf[..], &expected[..]);
        assert_eq!(&src.rbuf[..], &[5, 0, 0], "the partial header stays");

        assert!(matches!(
            src.forward(&mut dst, 4, false).await,
            Err(WireError::Malformed(_))
        ));
    }
}
