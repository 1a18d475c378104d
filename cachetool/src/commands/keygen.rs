//! `keygen`: a key pair for signed pushes, printed, never written to a file.

use std::process::ExitCode;

use remote::signing::{Signer, SIGNING_KEY_ENV, TRUSTED_KEYS_ENV};

use crate::output::json;
use crate::session::{Fail, Result};

pub fn run(as_json: bool) -> Result<ExitCode> {
    let key = Signer::generate().map_err(Fail)?;
    if as_json {
        json(&serde_json::json!({ "signing_key": key.secret_hex(), "public_key": key.public_hex() }));
    } else {
        println!("{SIGNING_KEY_ENV}={}", key.secret_hex());
        println!("{TRUSTED_KEYS_ENV}={}", key.public_hex());
    }
    Ok(ExitCode::SUCCESS)
}
