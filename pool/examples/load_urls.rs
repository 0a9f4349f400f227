//! The seeds' `ThreadPoolExecutor` example (`shared/seeds/003_dd088512658652ad.txt`): load
//! several URLs at once and report each page as it arrives, with `as_completed`.
//!
//! ```python
//! with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
//!     future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
//!     for future in concurrent.futures.as_completed(future_to_url):
//!         url = future_to_url[future]
//!         try:
//!             data = future.result()
//!         except Exception as exc:
//!             print('%r generated an exception: %s' % (url, exc))
//!         else:
//!             print('%r page is %d bytes' % (url, len(data)))
//! ```
//!
//! No external network: the example starts its own HTTP/1.0 server on 127.0.0.1 (a few lines
//! on `std::net::TcpListener`), serves four pages of different sizes with different delays, and
//! adds a fifth URL on a closed port, so the error path shows too. The server answers a bounded
//! number of requests and stops by itself after ten seconds at most.
//!
//! Run: `cargo run --release -p concur-pool --example load_urls`

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use concur_core::as_completed;
use concur_pool::ThreadPool;

/// The pages the local server knows: path, size in bytes, delay before answering.
const PAGES: [(&str, usize, u64); 4] = [
    ("/foxnews", 120_000, 80),
    ("/cnn", 45_000, 20),
    ("/wsj", 300_000, 50),
    ("/bbc", 9_000, 5),
];

/// Serves `PAGES` over HTTP/1.0 until each was requested once or ten seconds passed.
fn serve(listener: TcpListener) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let stop_at = Instant::now() + Duration::from_secs(10);
    let mut answered = 0;
    while answered < PAGES.len() && Instant::now() < stop_at {
        match listener.accept() {
            Ok((stream, _)) => {
                answered += 1;
                // One thread per connection, so slow pages do not hold up fast ones.
                thread::spawn(move || {
                    let _ = answer(stream);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(_) => break,
        }
    }
}

/// Reads one request line and answers it.
fn answer(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        request.push(byte[0]);
    }
    let request = String::from_utf8_lossy(&request);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    match PAGES.iter().find(|(p, _, _)| *p == path) {
        Some(&(_, size, delay_ms)) => {
            thread::sleep(Duration::from_millis(delay_ms));
            let body = "x".repeat(size);
            write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {size}\r\n\r\n{body}"
            )
        }
        None => write!(
            stream,
            "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        ),
    }
}

/// `urllib.request.urlopen(url, timeout=timeout).read()` for `http://host:port/path` URLs.
fn load_url(url: &str, timeout: Duration) -> io::Result<Vec<u8>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "only http:// URLs"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = host
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of headers"))?;
    let status = String::from_utf8_lossy(&response[..split]);
    let status = status.lines().next().unwrap_or_default().to_owned();
    if !status.contains(" 200 ") {
        return Err(io::Error::other(format!("HTTP error: {status}")));
    }
    Ok(response[split + 4..].to_vec())
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let server_addr = listener.local_addr()?;
    let server = thread::spawn(move || serve(listener));
    // A port that was just free and is closed again: connecting to it is refused.
    let closed_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();

    let mut urls: Vec<String> = PAGES
        .iter()
        .map(|(path, _, _)| format!("http://{server_addr}{path}"))
        .collect();
    urls.push(format!(
        "http://127.0.0.1:{closed_port}/some-made-up-domain"
    ));

    {
        // `with ThreadPoolExecutor(max_workers=5) as executor:`
        let executor = ThreadPool::builder()
            .max_workers(5)
            .thread_name_prefix("load_url")
            .build()
            .expect("five workers is a valid pool");
        // Start the load operations and mark each future with its URL.
        let future_to_url: HashMap<_, _> = urls
            .iter()
            .map(|url| {
                let target = url.clone();
                let future = executor
                    .submit(move || load_url(&target, Duration::from_secs(60)))
                    .expect("the pool accepts work");
                (future, url.clone())
            })
            .collect();
        for future in as_completed(future_to_url.keys(), None) {
            let future = future.expect("no timeout was given");
            let url = &future_to_url[future];
            match future.result() {
                Ok(Ok(data)) => println!("{url:?} page is {} bytes", data.len()),
                Ok(Err(exc)) => println!("{url:?} generated an exception: {exc}"),
                Err(exc) => println!("{url:?} generated an exception: {exc}"),
            }
        }
    } // the pool shuts down here, waiting for its workers
    server.join().expect("the server thread does not panic");
    Ok(())
}
