//! containerd's CRI image service (`runtime.v1.ImageService`), the API kubelet pulls through:
//! it applies the CRI plugin's registry configuration (`config_path` and its hosts.toml), which
//! `ctr` does not. gRPC over HTTP/2 on containerd's socket, reached over SSH.

use std::time::Duration;

use super::channel::H2;
use super::{ApiError, Auth};
use crate::ssh::Session;

/// The generated client and messages (build.rs, from proto/cri_images.proto).
#[allow(clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("runtime.v1");
}

use proto::image_service_client::ImageServiceClient;
use proto::{
    AuthConfig, ImageSpec, ImageStatusRequest, ListImagesRequest, PullImageRequest,
    RemoveImageRequest,
};

/// containerd's gRPC socket (`[grpc] address`), where its CRI plugin serves too.
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// How long one call may take; a pull, kubelet's default runtime request timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to the CRI image service on one host (clones share it).
#[derive(Clone)]
pub struct Cri {
    host: String,
    socket: String,
    client: ImageServiceClient<H2>,
}

impl Cri {
    /// Connect to the CRI on `socket` (one channel and an HTTP/2 handshake; no call yet).
    pub async fn connect(session: &Session, socket: &str) -> Result<Cri, ApiError> {
        let h2 = H2::connect(session, socket).await?;
        // gRPC needs an authority; the socket is the real address.
        let origin = hyper::Uri::from_static("http://localhost");
        Ok(Cri {
            host: session.target().name.clone(),
            socket: socket.to_string(),
            client: ImageServiceClient::with_origin(h2, origin),
        })
    }

    /// Pull `image` as kubelet would, with `auth` in the request; returns the image's ID.
    pub async fn pull(&mut self, image: &str, auth: Option<Auth<'_>>) -> Result<String, ApiError> {
        let req = PullImageRequest {
            image: Some(spec(image)),
            auth: auth.map(|a| AuthConfig {
                username: a.username.to_string(),
                password: a.password.to_string(),
                // containerd gives the credential only to the host of this URL (its
                // ParseAuth compares url.Parse(server_address).Host): a bare host:port would
                // parse as a scheme and match no host.
                server_address: format!("https://{}", a.registry),
                ..AuthConfig::default()
            }),
        };
        let call = format!("PullImage {image}");
        let answer = self
            .call(&call, |c, r| Box::pin(c.pull_image(r)), req)
            .await?;
        Ok(answer.image_ref)
    }

    /// The digests (`repo@sha256:...`) by which `image` is known; `None`: not present.
    pub async fn repo_digests(&mut self, image: &str) -> Result<Option<Vec<String>>, ApiError> {
        let req = ImageStatusRequest {
            image: Some(spec(image)),
            verbose: false,
        };
        let call = format!("ImageStatus {image}");
        let answer = self
            .call(&call, |c, r| Box::pin(c.image_status(r)), req)
            .await?;
        Ok(answer.image.map(|i| i.repo_digests))
    }

    /// Every tag the runtime knows whose repository is `repo` (`repo:tag`).
    pub async fn tags_of(&mut self, repo: &str) -> Result<Vec<String>, ApiError> {
        // containerd ignores the request's filter: the list is filtered here.
        let answer = self
            .call(
                "ListImages",
                |c, r| Box::pin(c.list_images(r)),
                ListImagesRequest::default(),
            )
            .await?;
        let prefix = format!("{repo}:");
        Ok(answer
            .images
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .filter(|t| t.starts_with(&prefix))
            .collect())
    }

    /// Remove `image` (every name of it); removing an absent image succeeds.
    pub async fn remove(&mut self, image: &str) -> Result<(), ApiError> {
        let req = RemoveImageRequest {
            image: Some(spec(image)),
        };
        let call = format!("RemoveImage {image}");
        self.call(&call, |c, r| Box::pin(c.remove_image(r)), req)
            .await
            .map(|_| ())
    }

    /// One unary call, bounded in time, its failure named.
    async fn call<Req, Resp>(
        &mut self,
        call: &str,
        send: impl FnOnce(
            &mut ImageServiceClient<H2>,
            tonic::Request<Req>,
        ) -> futures::future::BoxFuture<
            '_,
            Result<tonic::Response<Resp>, tonic::Status>,
        >,
        req: Req,
    ) -> Result<Resp, ApiError> {
        let mut req = tonic::Request::new(req);
        req.set_timeout(CALL_TIMEOUT);
        let answer = tokio::time::timeout(CALL_TIMEOUT, send(&mut self.client, req)).await;
        let status = match answer {
            Ok(Ok(r)) => return Ok(r.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => tonic::Status::deadline_exceeded("no answer in time"),
        };
        Err(match status.code() {
            // containerd without its CRI plugin: "unknown service runtime.v1.ImageService".
            tonic::Code::Unimplemented => ApiError::NotServed {
                host: self.host.clone(),
                socket: self.socket.clone(),
                api: "the CRI image service (runtime.v1)",
                reason: status.message().to_string(),
            },
            _ => ApiError::Failed {
                host: self.host.clone(),
                call: call.to_string(),
                reason: status.message().to_string(),
            },
        })
    }
}

fn spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_string(),
        ..ImageSpec::default()
    }
}
