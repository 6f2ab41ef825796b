//! A fixture HTTP server for tests (std `TcpListener` on 127.0.0.1): it answers each
//! connection with a scripted reply — documented wire formats replayed with controlled gaps,
//! cut connections and error statuses — and hands back the requests it received. Used by
//! runner's own unit and integration tests only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

/// One step of a reply's body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes as one chunk.
    Send(String),
    /// Wait this many milliseconds.
    Sleep(u64),
    /// Close the connection here, without ending the chunked body.
    Cut,
    /// Break the connection here with a TCP reset (RST), as a crashed server or a middlebox
    /// does.
    Reset,
    /// Send these bytes as they are, outside the chunked framing (a broken chunk, or with
    /// [`Reply::raw`] a whole answer that is not HTTP).
    Raw(String),
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub steps: Vec<Step>,
}

impl Reply {
    pub fn ok(steps: Vec<Step>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            steps,
        }
    }

    /// An answer of the steps' bytes alone, without the status line and headers the fixture
    /// writes otherwise (status 0).
    pub fn raw(steps: Vec<Step>) -> Reply {
        Reply {
            status: 0,
            headers: Vec::new(),
            steps,
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            steps: vec![Step::Send(body.into())],
        }
    }
}

/// A received request: its head (request line and headers) and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body: String,
}

pub struct Fixture {
    pub port: u16,
    pub requests: Receiver<Received>,
    _thread: JoinHandle<()>,
}

impl Fixture {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Serves the replies, one connection each, in order.
pub fn serve(replies: Vec<Reply>) -> Fixture {
    let n = replies.len();
    serve_fn(n, move |_, i| replies[i].clone())
}

/// Serves `count` connections, answering each request with `reply(request, index)`.
pub fn serve_fn(
    count: usize,
    reply: impl Fn(&Received, usize) -> Reply + Send + 'static,
) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        for i in 0..count {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Some(req) = read_request(&stream) else {
                continue;
            };
            let r = reply(&req, i);
            let _ = tx.send(req);
            answer(stream, &r);
        }
    });
    Fixture {
        port,
        requests: rx,
        _thread: thread,
    }
}

fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut r = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Received {
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn answer(mut s: TcpStream, reply: &Reply) {
    let raw = reply.status == 0;
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    if !raw && s.write_all(head.as_bytes()).is_err() {
        return;
    }
    for step in &reply.steps {
        match step {
            Step::Send(data) => {
                let chunk = format!("{:x}\r\n{data}\r\n", data.len());
                if s.write_all(chunk.as_bytes())
                    .and_then(|()| s.flush())
                    .is_err()
                {
                    return;
                }
            }
            Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Step::Cut => return,
            Step::Reset => return reset(s),
            Step::Raw(bytes) => {
                if s.write_all(bytes.as_bytes())
                    .and_then(|()| s.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    if !raw {
        let _ = s.write_all(b"0\r\n\r\n");
    }
}

/// Closes `s` with a reset: no lingering, so the close sends RST rather than FIN.
fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a `linger` of the size given from a live pointer, on the
    // stream's own descriptor.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// An SSE `data:` event.
pub fn data(json: &str) -> Step {
    Step::Send(format!("data: {json}\n\n"))
}

/// An SSE event with a name.
pub fn event(name: &str, json: &str) -> Step {
    Step::Send(format!("event: {name}\ndata: {json}\n\n"))
}

/// Serves connections at once, one thread each, answering each request with
/// `reply(request, index, in_flight)` where `in_flight` counts the connections being answered
/// (this one included); until the test ends.
pub fn serve_concurrent(
    reply: impl Fn(&Received, usize, usize) -> Reply + Send + Sync + 'static,
) -> Fixture {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let (tx, rx) = mpsc::channel();
    let reply = Arc::new(reply);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let thread = std::thread::spawn(move || {
        for i in 0.. {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let (reply, in_flight, tx) = (Arc::clone(&reply), Arc::clone(&in_flight), tx.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(req) = read_request(&stream) else {
                    return;
                };
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                let r = reply(&req, i, n);
                let _ = tx.send(req);
                answer(stream, &r);
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Fixture {
        port,
        requests: rx,
        _thread: thread,
    }
}
