//! Is the destination another mailbox than the source? A typo or a DNS alias can name the
//! same account twice; `--delete-source` would then delete every message it just found
//! "already present".

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

impl Engine {
    /// Before `--delete-source` may delete anything: create a uniquely named folder on the
    /// destination and make sure the source's LIST does not show it. Refused (usage error)
    /// when it does, or when the proof cannot be made.
    pub(super) fn prove_distinct(&self, main: &mut Pair) -> SResult<()> {
        let token = format!(
            "btsx-probe-{}-{:x}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let prefix = main
            .dst
            .personal_namespace()
            .on(Side::Destination)?
            .map(|(p, _)| p)
            .unwrap_or_default();
        let probe = format!("{prefix}{token}");
        if let Err(e) = main.dst.create(&probe) {
            if e.is_fatal() || e.is_recoverable() {
                return Err(SideErr {
                    side: Side::Destination,
                    err: e,
                });
            }
            return Err(refuse(format!(
                "--delete-source: cannot prove the destination is another mailbox than the source (creating the probe folder '{probe}' failed: {}); nothing was copied or deleted. Run without --delete-source",
                e.message
            )));
        }
        let listed = main.src.list();
        // The probe goes whatever LIST said; a failure to delete it is only untidy.
        if let Err(e) = main.dst.delete_folder(&probe) {
            self.emit(Event::Warning {
                message: format!(
                    "could not delete the probe folder '{probe}' from the destination: {}",
                    e.message
                ),
                folder: None,
            });
        }
        let same = listed
            .on(Side::Source)?
            .iter()
            .any(|f| f.name.contains(&token));
        if same {
            return Err(refuse(format!(
                "the source and the destination are the same mailbox ({} and {} show the same folders: a probe folder created on the destination appeared on the source); --delete-source would delete the mail it finds there. Nothing was copied or deleted",
                self.src.endpoint.url(),
                self.dst.endpoint.url()
            )));
        }
        Ok(())
    }

    /// A plain migrate: every folder on both sides with the same UIDVALIDITY and UIDNEXT is
    /// very likely one mailbox under two names.
    pub(super) fn warn_if_same(&self, pairs: &[(Option<u32>, Option<u32>, FolderInfo)]) {
        let same = !pairs.is_empty()
            && pairs.iter().all(|(v, n, d)| {
                v.is_some() && n.is_some() && *v == d.uid_validity && *n == d.uid_next
            });
        if same {
            self.emit(Event::Warning {
                message: format!(
                    "every folder has the same UIDVALIDITY and UIDNEXT on {} and {}: they are very likely the same mailbox; never use --delete-source with them",
                    self.src.endpoint.url(),
                    self.dst.endpoint.url()
                ),
                folder: None,
            });
        }
    }
}

fn refuse(message: String) -> SideErr {
    SideErr {
        side: Side::Destination,
        err: ImapError::new(Kind::Usage, message),
    }
}
