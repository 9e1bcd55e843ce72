// The local stack's MQTT broker: aedes (MQTT 3.1.1, QoS 0 and 1), installed by `npm ci` with the
// project (package.json). Started by `python -m local.aws.iot_broker`; serves anonymous MQTT on
// --host:--port until SIGTERM or SIGINT.
import net from 'node:net'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'

const { values } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } }
})
const port = Number(values.port)
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`mqtt broker: --port must be a port number, not ${values.port}`)
  process.exit(2)
}

const broker = await Aedes.createBroker()
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
