// The stock y-websocket server (@y/websocket-server), documents in memory only, on 127.0.0.1:$PORT.
process.env.HOST = '127.0.0.1'
await import('@y/websocket-server/src/server.js').catch(async () => {
  // The package's exports map may hide src/server.js: load it by path instead.
  const { createRequire } = await import('node:module')
  const require = createRequire(import.meta.url)
  const pkg = require.resolve('@y/websocket-server/package.json')
  await import(pkg.replace(/package\.json$/, 'src/server.js'))
})
