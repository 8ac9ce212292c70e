#!/usr/bin/env bash
# Builds the samples' images with the names their manifests use, as Istio's docker-bake.hcl
# builds its own: one image per app version, the version chosen by build args.
#
#   samples/build-images.sh                # docker.io/pilotfish/...:0.1.0
#   HUB=localhost:5000 TAG=dev samples/build-images.sh --platform linux/amd64
#
# Extra arguments go to every `docker build`; push with `docker push` afterwards.
set -euo pipefail

HUB="${HUB:-docker.io/pilotfish}"
TAG="${TAG:-0.1.0}"
EXTRA=("$@")
cd "$(dirname "${BASH_SOURCE[0]}")"

build() {  # name context [build args...]
  local name=$1 context=$2
  shift 2
  docker build "$@" -t "${HUB}/${name}:${TAG}" "${context}"
}

build examples-bookinfo-productpage-v1 bookinfo/src/productpage ${EXTRA[@]+"${EXTRA[@]}"}
build examples-bookinfo-details-v1 bookinfo/src/details --build-arg service_version=v1 ${EXTRA[@]+"${EXTRA[@]}"}
build examples-bookinfo-ratings-v1 bookinfo/src/ratings --build-arg service_version=v1 ${EXTRA[@]+"${EXTRA[@]}"}
build examples-bookinfo-reviews-v1 bookinfo/src/reviews --build-arg service_version=v1 ${EXTRA[@]+"${EXTRA[@]}"}
build examples-bookinfo-reviews-v2 bookinfo/src/reviews --build-arg service_version=v2 \
  --build-arg enable_ratings=true ${EXTRA[@]+"${EXTRA[@]}"}
build examples-bookinfo-reviews-v3 bookinfo/src/reviews --build-arg service_version=v3 \
  --build-arg enable_ratings=true --build-arg star_color=red ${EXTRA[@]+"${EXTRA[@]}"}
build examples-httpbin httpbin/src ${EXTRA[@]+"${EXTRA[@]}"}
build examples-helloworld-v1 helloworld/src --build-arg service_version=v1 ${EXTRA[@]+"${EXTRA[@]}"}
build examples-helloworld-v2 helloworld/src --build-arg service_version=v2 ${EXTRA[@]+"${EXTRA[@]}"}
