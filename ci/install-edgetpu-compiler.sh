#!/usr/bin/env bash
# Coral's apt repository (x86-64 Debian/Ubuntu only): the Edge TPU compiler.
set -euo pipefail
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg
echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
  | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list
sudo apt-get update -qq
sudo apt-get install -y -qq edgetpu-compiler
edgetpu_compiler --version
