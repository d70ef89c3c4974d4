# Produces COUNT records "PREFIX-i xxx..." (padded, so that compression pays
# off: kafka-python sends a batch uncompressed when compressing does not
# make it smaller) with keys "ki" to TOPIC with kafka-python.
#
#   produce.py ADDR TOPIC PREFIX COUNT [COMPRESSION]
import sys

from kafka import KafkaProducer

addr, topic, prefix, count = sys.argv[1:5]
kwargs = {}
if len(sys.argv) > 5:
    kwargs['compression_type'] = sys.argv[5]
producer = KafkaProducer(bootstrap_servers=addr, **kwargs)
for i in range(int(count)):
    producer.send(topic, ('%s-%d %s' % (prefix, i, 'x' * 200)).encode(), key=b'k%d' % i)
producer.flush()
producer.close()
print('produced', count)
