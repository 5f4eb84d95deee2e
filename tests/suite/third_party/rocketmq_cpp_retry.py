"""Fails a message once with the Apache RocketMQ C++ client (PyPI `rocketmq`) and waits for it to come back.

Usage: rocketmq_cpp_retry.py <namesrv> <topic> <group>
Sends one message, consumes it with a push consumer whose handler raises on the first delivery (the client
answers RECONSUME_LATER and sends it back) and accepts the second; prints one line per delivery.
"""
import sys
import time

from rocketmq.client import Message, Producer, PushConsumer

namesrv, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]

producer = Producer('CPP_PRODUCER')
producer.set_namesrv_addr(namesrv)
producer.start()
m = Message(topic)
m.set_keys('retry-key')
m.set_body('fail-once')
r = producer.send_sync(m)
print('SENT status=%d' % int(r.status), flush=True)
producer.shutdown()

seen = []


def on_message(msg):
    seen.append(msg.reconsume_times)
    print('DELIVERY at=%d topic=%s reconsume=%d body=%s'
          % (int(time.time() * 1000), msg.topic, msg.reconsume_times, msg.body.decode()), flush=True)
    if msg.reconsume_times == 0:
        raise RuntimeError('fail the first delivery on purpose')


consumer = PushConsumer(group)
consumer.set_namesrv_addr(namesrv)
consumer.subscribe(topic, on_message, '*')
consumer.start()
deadline = time.time() + 60
while len(seen) < 2 and time.time() < deadline:
    time.sleep(0.2)
time.sleep(1)  # anything more would be a wrong extra delivery
consumer.shutdown()
print('DONE %d' % len(seen), flush=True)
