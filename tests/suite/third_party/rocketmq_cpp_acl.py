"""Drives an ACL-enabled Apogee with the Apache RocketMQ C++ client (PyPI `rocketmq`) and its session credentials.

Usage: rocketmq_cpp_acl.py <namesrv> <topic> signed <access_key> <secret_key>
       rocketmq_cpp_acl.py <namesrv> <topic> unsigned
signed: sends 3 messages, then consumes them with a push consumer, both signing with the credentials.
unsigned: one send without credentials; prints REFUSED and the client's error, or SENT if it was accepted.
"""
import sys
import time

from rocketmq.client import Message, Producer, PushConsumer

namesrv, topic, mode = sys.argv[1], sys.argv[2], sys.argv[3]
signed = mode == 'signed'


def credentials(client):
    if signed:
        client.set_session_credentials(sys.argv[4], sys.argv[5], 'ALIYUN')


def message(i):
    m = Message(topic)
    m.set_keys('cpp-acl-key-%d' % i)
    m.set_tags('AclTag')
    m.set_body('signed-cpp-%d' % i)
    return m


producer = Producer('CPP_ACL_PRODUCER')
producer.set_namesrv_addr(namesrv)
credentials(producer)
producer.start()
if not signed:
    try:
        r = producer.send_sync(message(0))
        print('SENT status=%d' % int(r.status), flush=True)
    except Exception as e:  # the client raises on a refused send
        print('REFUSED ' + str(e).replace('\n', ' '), flush=True)
    producer.shutdown()
    sys.exit(0)
for i in range(3):
    r = producer.send_sync(message(i))
    print('SENT status=%d offset=%d' % (int(r.status), r.offset), flush=True)
producer.shutdown()

got = []


def on_message(msg):
    got.append(msg.body.decode())


consumer = PushConsumer('CPP_ACL_CONSUMER')
consumer.set_namesrv_addr(namesrv)
credentials(consumer)
consumer.subscribe(topic, on_message, 'AclTag')
consumer.start()
deadline = time.time() + 60
while len(got) < 3 and time.time() < deadline:
    time.sleep(0.2)
consumer.shutdown()
print('CONSUMED ' + ','.join(sorted(got)), flush=True)
