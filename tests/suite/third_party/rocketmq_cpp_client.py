"""Drives Apogee with the Apache RocketMQ C++ client (PyPI package `rocketmq`, which bundles librocketmq).

Usage: rocketmq_cpp_client.py <namesrv> <topic>
Sends 5 messages with tags and keys, then consumes them with a push consumer; prints one line per step.
"""
import sys
import time

from rocketmq.client import Message, Producer, PushConsumer

namesrv, topic = sys.argv[1], sys.argv[2]

producer = Producer('CPP_PRODUCER')
producer.set_namesrv_addr(namesrv)
producer.start()
for i in range(5):
    m = Message(topic)
    m.set_keys('cpp-key-%d' % i)
    m.set_tags('CppTag')
    m.set_body('from-cpp-%d' % i)
    r = producer.send_sync(m)
    print('SENT status=%d offset=%d id=%s' % (int(r.status), r.offset, r.msg_id), flush=True)
producer.shutdown()

got = []


def on_message(msg):
    got.append(msg.body.decode())


consumer = PushConsumer('CPP_CONSUMER')
consumer.set_namesrv_addr(namesrv)
consumer.subscribe(topic, on_message, 'CppTag')
consumer.start()
deadline = time.time() + 60
while len(got) < 5 and time.time() < deadline:
    time.sleep(0.2)
consumer.shutdown()
print('CONSUMED ' + ','.join(sorted(got)), flush=True)
