# One member of a kafka-python consumer group. It prints every record value
# on a line of its own as soon as it is consumed, commits synchronously after
# each poll, and leaves the group when its stdin closes.
#
#   group_consumer.py ADDR TOPIC GROUP
import sys
import threading

from kafka import KafkaConsumer

addr, topic, group = sys.argv[1:4]

stop = threading.Event()


def watch_stdin():
    sys.stdin.read()
    stop.set()


threading.Thread(target=watch_stdin, daemon=True).start()

consumer = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group,
                         auto_offset_reset='earliest', enable_auto_commit=False,
                         client_id='py-' + group)
print('started', flush=True)
while not stop.is_set():
    batches = consumer.poll(timeout_ms=200)
    for tp, records in batches.items():
        for r in records:
            print('record %s' % r.value.decode(), flush=True)
    if batches:
        consumer.commit()
consumer.close()
print('closed', flush=True)
