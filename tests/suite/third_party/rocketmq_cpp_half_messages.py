"""Half messages from the Apache RocketMQ C++ client (PyPI `rocketmq` 0.4.4), and what its consumer sees.

Usage: rocketmq_cpp_half_messages.py <namesrv> <topic> send
       rocketmq_cpp_half_messages.py <namesrv> <topic> consume <group> <seconds>
`send` sends two messages marked TRAN_MSG=true (a half message, as RocketMQ's transactional producers mark
it; this package's binding has no transactional producer of its own) and prints `HALF <body> <msg id>`.
`consume` runs a push consumer for <seconds> and prints `CONSUMED <bodies>`.
"""
import sys
import time

from rocketmq.client import Message, Producer, PushConsumer

namesrv, topic, phase = sys.argv[1], sys.argv[2], sys.argv[3]

if phase == 'send':
    producer = Producer('CPP_TX_PRODUCER')
    producer.set_namesrv_addr(namesrv)
    producer.start()
    for body in ('cpp-commit', 'cpp-rollback'):
        m = Message(topic)
        m.set_keys(body)
        m.set_body(body)
        m.set_property('TRAN_MSG', 'true')
        m.set_property('PGROUP', 'CPP_TX_PRODUCER')
        r = producer.send_sync(m)
        print('HALF %s %s status=%d' % (body, r.msg_id, int(r.status)), flush=True)
    producer.shutdown()
else:
    group, seconds = sys.argv[4], float(sys.argv[5])
    got = []
    consumer = PushConsumer(group)
    consumer.set_namesrv_addr(namesrv)
    consumer.subscribe(topic, lambda msg: got.append(msg.body.decode()), '*')
    consumer.start()
    time.sleep(seconds)
    consumer.shutdown()
    print('CONSUMED ' + ','.join(sorted(got)), flush=True)
