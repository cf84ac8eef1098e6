// Hocuspocus with no extensions (documents in memory only), on 127.0.0.1:$PORT.
import { Server } from '@hocuspocus/server'

const server = new Server({ port: Number(process.env.PORT), address: '127.0.0.1', quiet: true })
await server.listen()
console.log(`listening on 127.0.0.1:${process.env.PORT}`)
