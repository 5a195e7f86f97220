#!/bin/sh
# The sample producer of docker-compose.yml: replays the bundled samples (one JSON record per
# line) into the input topic with Kafka's console producer. Some records are broken on purpose
# (samples/cloudtrail/broken): they reach the dead-letter topic with their reason.
set -eu
broker="${BROKER:-kafka:9092}"
topic="${TOPIC:-security-telemetry}"
for f in /samples/cloudtrail/stratus/*.jsonl /samples/cloudtrail/awsdocs/*.jsonl /samples/cloudtrail/broken/*.jsonl \
         /samples/waf/awsdocs/*.jsonl /samples/securityhub/awsdocs/*.jsonl \
         /samples/agent/session/cloudtrail.jsonl /samples/agent/session/mcp.jsonl \
         /samples/agent/cleanup/cloudtrail.jsonl /samples/agent/cleanup/mcp.jsonl; do
  echo "producing $f"
  /opt/kafka/bin/kafka-console-producer.sh --bootstrap-server "$broker" --topic "$topic" < "$f"
done
echo "samples produced to $topic"
