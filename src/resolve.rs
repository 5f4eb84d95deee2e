//! Turning a configured `host:port` (name servers, a slave's master) into a socket address without
//! blocking the shard: glommio's `TcpStream::connect` resolves host names with the blocking
//! `getaddrinfo` on the calling thread, which stalls every connection of the shard for as long as DNS
//! takes. An `ip:port` is parsed in place; anything else is resolved on the executor's blocking pool.

use std::net::{SocketAddr, ToSocketAddrs};

/// The first address `addr` (`ip:port` or `host:port`) resolves to. Must run inside a glommio executor.
pub async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    if let Ok(parsed) = addr.parse() {
        return Ok(parsed);
    }
    let owned = addr.to_owned();
    apogee_engine::blocking::run(move || {
        owned.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{owned} resolves to no address"),
            )
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn ip_addresses_parse_and_host_names_resolve_on_the_blocking_pool() {
        let (ip, host) = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                (
                    super::resolve("127.0.0.1:9876").await,
                    super::resolve("localhost:9876").await,
                )
            })
            .expect("executor starts")
            .join()
            .expect("executor ran");
        assert_eq!(ip.unwrap(), "127.0.0.1:9876".parse().unwrap());
        let host = host.unwrap();
        assert!(host.ip().is_loopback() && host.port() == 9876, "{host}");
    }
}
