//! Before the replicas start: say what storage regboot trusts, and make sure an S3 bucket
//! exists, seen from the first registry host (as the replicas will see the endpoint). A
//! missing bucket fails every registry host, or is created when the inventory allows it.

use anyhow::Result;
use futures::future::BoxFuture;

use super::{FleetCx, Module, Outcome};
use crate::inventory::Storage;
use crate::s3::{self, Bucket};

pub(crate) struct S3Bucket;

impl Module for S3Bucket {
    fn name(&self) -> &'static str {
        "s3_bucket"
    }

    fn plans_over_ssh(&self) -> bool {
        true
    }

    fn once<'a>(&'a self, cx: &'a FleetCx<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mut out = Outcome::default();
            out.notes.extend(s3::note(cx.inv));
            let (Storage::S3(cfg), Some(via)) = (&cx.inv.registry.storage, cx.members.first())
            else {
                return Ok(out);
            };
            let keys = (
                std::env::var(&cfg.access_key_env).unwrap_or_default(),
                std::env::var(&cfg.secret_key_env).unwrap_or_default(),
            );
            match s3::ensure_bucket(via.remote, cfg, (&keys.0, &keys.1), cx.check).await {
                Ok(Bucket::Exists) => {}
                Ok(Bucket::Created) => out
                    .notes
                    .push(format!("storage: created bucket {:?}", cfg.bucket)),
                Ok(Bucket::WouldCreate) => out
                    .notes
                    .push(format!("storage: would create bucket {:?}", cfg.bucket)),
                Err(e) => {
                    let msg = format!("storage: {e:#}");
                    out.failed = cx
                        .members
                        .iter()
                        .map(|m| (m.host.name.clone(), msg.clone()))
                        .collect();
                }
            }
            Ok(out)
        })
    }
}
