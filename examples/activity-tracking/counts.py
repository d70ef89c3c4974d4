#!/usr/bin/env python3
"""Live counts of the activity-tracking site, with plain kafka-python.

This is ordinary Kafka client code, unchanged: it talks to wisp's Kafka
protocol listener (port 9092) as it would to Apache Kafka.

    python3 examples/activity-tracking/counts.py
    python3 examples/activity-tracking/counts.py --bootstrap 127.0.0.1:9092 --expect 1000

Every second it prints the running counts per event type and the top
pages and searches. With --expect N it exits once N events were counted,
printing a final "total ..." line.
"""
import argparse
import collections
import json
import os
import sys
import time

from kafka import KafkaConsumer

TOPICS = {"page-views": "views", "searches": "searches", "clicks": "clicks"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092"))
    ap.add_argument("--group", default="live-counts")
    ap.add_argument("--expect", type=int, default=0, help="exit after this many events")
    ap.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (0: never)")
    args = ap.parse_args()

    consumer = KafkaConsumer(
        *TOPICS,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        value_deserializer=lambda v: json.loads(v),
    )
    counts = collections.Counter()
    pages = collections.Counter()
    queries = collections.Counter()
    users = set()
    started = last = time.time()
    total = 0
    try:
        while not args.expect or total < args.expect:
            if args.timeout and time.time() - started > args.timeout:
                print(f"timeout after {args.timeout}s with {total} events", file=sys.stderr)
                return 1
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for m in msgs:
                    counts[TOPICS[m.topic]] += 1
                    users.add(m.key)
                    if m.topic == "page-views":
                        pages[m.value["page"]] += 1
                    elif m.topic == "searches":
                        queries[m.value["query"]] += 1
                    total += 1
            if time.time() - last >= 1:
                last = time.time()
                print(f"views={counts['views']} searches={counts['searches']} clicks={counts['clicks']} "
                      f"users={len(users)} top pages={pages.most_common(3)} top searches={queries.most_common(3)}",
                      flush=True)
        consumer.commit()
    finally:
        consumer.close()
    print(f"total views={counts['views']} searches={counts['searches']} clicks={counts['clicks']} users={len(users)}")
    print(f"top search: {queries.most_common(1)[0][0] if queries else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
