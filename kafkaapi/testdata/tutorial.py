# The stock kafka-python tutorial, verbatim but for the address (argv[1])
# and consumer_timeout_ms, so that the consumer loop ends.
import sys

addr = sys.argv[1]

from kafka import KafkaProducer

producer = KafkaProducer(bootstrap_servers=addr)
producer.send('topic_name', b'Hello, Kafka!')
producer.flush()

from kafka import KafkaConsumer

consumer = KafkaConsumer('topic_name', bootstrap_servers=addr,
                         auto_offset_reset='earliest', consumer_timeout_ms=5000)
for message in consumer:
    print(message.value)
