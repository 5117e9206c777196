//! What several fuzz targets share: reading the fuzzer's bytes as an
//! HTTP/1 request the way the proxy receives one, and the connectors
//! Cordon ships.
pub mod request;
pub mod shipped;
