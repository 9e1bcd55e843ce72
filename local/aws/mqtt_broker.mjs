// The local stack's MQTT broker: aedes (MQTT 3.1.1, QoS 0 and 1), installed by `npm ci` with the
// project (package.json). Started by `python -m local.aws.iot_broker`; serves anonymous MQTT on
// --host:--port until SIGTERM or SIGINT.
//
// What IoT Core's device policy enforces, it enforces: a device topic (--device-topic-prefix, then
// the device id, then anything; also under a Basic Ingest prefix, --basic-ingest-root<rule>/) is
// its device's alone. A client publishing on another client's device topic is refused as IoT Core
// refuses an unauthorized MQTT 3.1.1 publish: no PUBACK, the connection closed (MQTT-3.3.5-2).
import net from 'node:net'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'device-topic-prefix': { type: 'string' },
    'basic-ingest-root': { type: 'string' }
  }
})
const port = Number(values.port)
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`mqtt broker: --port must be a port number, not ${values.port}`)
  process.exit(2)
}
const devicePrefix = values['device-topic-prefix']
const ingestRoot = values['basic-ingest-root']
if (!devicePrefix || !ingestRoot) {
  console.error('mqtt broker: --device-topic-prefix and --basic-ingest-root are required')
  process.exit(2)
}

// The device a topic belongs to, or null: <prefix>/<device>/..., bare or as a Basic Ingest topic.
function deviceOf (topic) {
  let rest = topic
  if (rest.startsWith(ingestRoot)) {
    const slash = rest.indexOf('/', ingestRoot.length)
    if (slash < 0) return null
    rest = rest.slice(slash + 1)
  }
  if (!rest.startsWith(devicePrefix + '/')) return null
  return rest.slice(devicePrefix.length + 1).split('/')[0]
}

const broker = await Aedes.createBroker()
broker.authorizePublish = (client, packet, callback) => {
  if (packet.topic.startsWith('$SYS')) {
    return callback(new Error('$SYS topic is reserved'))
  }
  const owner = deviceOf(packet.topic)
  if (owner !== null && (client === null || client.id !== owner)) {
    const who = client === null ? 'a will without its client' : `client ${client.id}`
    console.error(`mqtt broker: ${who} may not publish on ${packet.topic}: connection closed`)
    return callback(new Error(`not authorized to publish on ${packet.topic}`))
  }
  callback(null)
}
const server = net.createServer(broker.handle)
server.on('error', (err) => {
  console.error(`mqtt broker: ${err.message}`)
  process.exit(1)
})
server.listen(port, values.host, () => {
  console.log(`mqtt broker (aedes) listening on ${values.host}:${port}`)
})

function stop () {
  server.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
