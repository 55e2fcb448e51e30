//! The request shapes the benchmark sends: small GETs, POSTs with a 1 KiB JSON body (which take
//! the worker's hyper path, since they have a body), and GETs of a 64 KiB response.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    /// GET, 3-byte answer.
    Get,
    /// POST with a 1 KiB JSON body, 3-byte answer.
    Post,
    /// GET, 64 KiB answer.
    Large,
}

impl Shape {
    pub fn path(self) -> &'static str {
        match self {
            Shape::Get => "/bench/hello",
            Shape::Post => "/bench/orders",
            Shape::Large => "/bench/large",
        }
    }

    pub fn describe(self) -> String {
        match self {
            Shape::Get => "GET, 3-byte response".into(),
            Shape::Post => format!("POST, {JSON_BODY_BYTES}-byte JSON body, 3-byte response"),
            Shape::Large => format!(
                "GET, {} KiB response",
                crate::proxies::LARGE_BODY_BYTES / 1024
            ),
        }
    }

    /// The wrk script that makes the requests of this shape, written into `dir`; `None` when
    /// wrk's default GET is the shape.
    pub fn script(self, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self != Shape::Post {
            return Ok(None);
        }
        let path = dir.join("post.lua");
        let script = format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [[{}]]\n",
            json_body()
        );
        std::fs::write(&path, script).with_context(|| format!("write {}", path.display()))?;
        Ok(Some(path))
    }

    /// The request body of this shape in a file written into `dir`, for h2load's `-d`; `None`
    /// when the shape is a GET.
    pub fn body_file(self, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self != Shape::Post {
            return Ok(None);
        }
        let path = dir.join("post.json");
        std::fs::write(&path, json_body()).with_context(|| format!("write {}", path.display()))?;
        Ok(Some(path))
    }
}

const JSON_BODY_BYTES: usize = 1024;

/// An order-like JSON document of exactly [`JSON_BODY_BYTES`] bytes.
fn json_body() -> String {
    let mut body = String::from("{\"customer\":\"c-1042\",\"items\":[");
    let mut i = 0;
    while body.len() < JSON_BODY_BYTES - 60 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("{{\"sku\":\"sku-{i:04}\",\"qty\":{}}}", i % 7 + 1));
        i += 1;
    }
    body.push_str("],\"note\":\"");
    while body.len() < JSON_BODY_BYTES - 2 {
        body.push('x');
    }
    body.push_str("\"}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_body_has_its_size() {
        let body = json_body();
        assert_eq!(body.len(), JSON_BODY_BYTES);
        assert!(body.starts_with('{') && body.ends_with('}'));
    }
}
