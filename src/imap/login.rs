//! Logging in: the only place the `imap` crate is used. It runs LOGIN or AUTHENTICATE on
//! the connection [`Wire::connect`] opened, then its session is dropped and btsx's own
//! client (see [`super::session`]) takes the stream over. That is safe because
//! `Wire::read` never hands the crate a byte past a line end: once the crate has read the
//! tagged answer to its login, nothing of what follows is in its buffers.

use super::error::{ImapError, Kind, from_crate, says_bandwidth_cap, truncate};
use super::parse::Code;
use super::session::{Auth, Credentials};
use super::wire::Wire;
use crate::endpoint::Endpoint;
use crate::secret::Secret;

/// Log in on `wire` (greeting already read). `caps` are the pre-login capabilities.
pub(crate) fn login(
    wire: &Wire,
    ep: &Endpoint,
    creds: &Credentials,
    caps: &[String],
) -> Result<(), ImapError> {
    let addr = ep.display_addr();
    let has = |c: &str| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
    let has_auth = |m: &str| has(&format!("AUTH={m}"));
    let mut client = imap::Client::new(wire.clone());
    client.greeting_read = true;
    let result = match &creds.auth {
        Auth::Password(secret) => {
            if has("LOGINDISABLED") {
                let plain = PlainAuth {
                    user: creds.user.clone(),
                    secret: secret.clone(),
                };
                client.authenticate("PLAIN", &plain)
            } else {
                client.login(&creds.user, secret.expose())
            }
        }
        Auth::OAuth2(source) => {
            let token = crate::secret::resolve(source).map_err(|e| {
                ImapError::new(Kind::Auth, format!("no OAuth2 token for {addr}: {e}"))
            })?;
            let mech = if has_auth("XOAUTH2") {
                "XOAUTH2"
            } else if has_auth("OAUTHBEARER") {
                "OAUTHBEARER"
            } else {
                return Err(ImapError::new(
                    Kind::Auth,
                    format!(
                        "{addr} offers neither XOAUTH2 nor OAUTHBEARER; use a password (an app password) instead of a token"
                    ),
                ));
            };
            let auth = OAuthAuth {
                mechanism: mech,
                user: creds.user.clone(),
                host: ep.host.clone(),
                port: ep.port,
                token,
            };
            client.authenticate(mech, &auth)
        }
    };
    match result {
        // The crate's session holds only a clone of the wire; dropping it sends nothing.
        Ok(session) => {
            drop(session);
            Ok(())
        }
        Err((e, _)) => {
            let e = from_crate(e, &addr);
            // Not now rather than not you: `[UNAVAILABLE]` (RFC 5530), too many connections
            // (Dovecot's `[LIMIT]`, Gmail's words), the bandwidth cap. The error table
            // decides what follows (back off with fewer connections, or stop for today);
            // it is no wrong password. (`[OVERQUOTA]`: the source's cap, or a destination
            // over quota, exit 7.)
            let over_quota = e.code == Some(Code::OverQuota);
            if matches!(e.kind, Kind::No | Kind::Bad)
                && (e.is_recoverable() || over_quota || says_bandwidth_cap(&e.message))
            {
                return Err(ImapError {
                    message: format!(
                        "{addr} refused the login for now: {}",
                        truncate(&e.message, 160)
                    ),
                    ..e
                });
            }
            if matches!(e.kind, Kind::No | Kind::Bad | Kind::OverQuota) {
                return Err(ImapError::new(
                    Kind::Auth,
                    format!(
                        "authentication failed for '{}' at {addr}: {} (check the user name and password)",
                        creds.user,
                        truncate(&e.message, 120)
                    ),
                ));
            }
            Err(e)
        }
    }
}

struct OAuthAuth {
    mechanism: &'static str,
    user: String,
    host: String,
    port: u16,
    token: Secret,
}

impl imap::Authenticator for OAuthAuth {
    type Response = Vec<u8>;
    fn process(&self, challenge: &[u8]) -> Self::Response {
        // A non-empty challenge after our response is the server's error report (JSON);
        // answering with an empty response lets it finish with NO.
        if !challenge.is_empty() {
            return Vec::new();
        }
        let t = self.token.expose();
        match self.mechanism {
            "XOAUTH2" => format!("user={}\x01auth=Bearer {t}\x01\x01", self.user).into_bytes(),
            _ => format!(
                "n,a={},\x01host={}\x01port={}\x01auth=Bearer {t}\x01\x01",
                self.user, self.host, self.port
            )
            .into_bytes(),
        }
    }
}

struct PlainAuth {
    user: String,
    secret: Secret,
}

impl imap::Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&self, _challenge: &[u8]) -> Self::Response {
        let mut v = Vec::new();
        v.push(0);
        v.extend_from_slice(self.user.as_bytes());
        v.push(0);
        v.extend_from_slice(self.secret.expose().as_bytes());
        v
    }
}
