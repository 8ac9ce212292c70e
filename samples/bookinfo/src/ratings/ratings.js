// Bookinfo's ratings service, as Istio's ratings.js behaves, with no npm dependencies.
//
//     node ratings.js PORT [HOST]
//
// Binds HOST (default 127.0.0.1; the image passes 0.0.0.0). GET /ratings/<id> answers
// {"id": N, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}; POST /ratings/<id> replaces a product's
// ratings in memory; GET /health. SERVICE_VERSION selects Istio's variants: v-faulty (503 half the
// time), v-delayed (7 s delay half the time), v-unavailable and v-unhealthy (flip every 60 s and
// 15 min). The database-backed v2 is not built here: it answers 500 as the original does when its
// database is unreachable. One access-log line per request on stdout; exits 0 on SIGTERM.

'use strict'

const http = require('http')

const port = parseInt(process.argv[2])
const host = process.argv[3] || '127.0.0.1'
const version = process.env.SERVICE_VERSION || 'v1'

if (Number.isNaN(port)) {
  console.error('usage: node ratings.js PORT [HOST]')
  process.exit(2)
}

const userAddedRatings = {} // used to demonstrate POST functionality
let unavailable = false
let healthy = true

if (version === 'v-unavailable') {
  setInterval(() => { unavailable = !unavailable }, 60000).unref()
}
if (version === 'v-unhealthy') {
  setInterval(() => { healthy = !healthy; unavailable = !unavailable }, 900000).unref()
}

function sendJson (res, status, obj) {
  const body = JSON.stringify(obj)
  res.writeHead(status, {'Content-type': 'application/json', 'Content-Length': Buffer.byteLength(body)})
  res.end(body)
}

function getLocalReviews (productId) {
  if (userAddedRatings[productId] !== undefined) {
    return userAddedRatings[productId]
  }
  return {id: productId, ratings: {Reviewer1: 5, Reviewer2: 4}}
}

function serveRatings (res, productId) {
  if (version === 'v2') {
    sendJson(res, 500, {error: 'could not connect to ratings database'})
  } else if (version === 'v-faulty' && Math.random() <= 0.5) {
    sendJson(res, 503, {error: 'Service unavailable'})
  } else if (version === 'v-delayed' && Math.random() <= 0.5) {
    setTimeout(() => sendJson(res, 200, getLocalReviews(productId)), 7000)
  } else if ((version === 'v-unavailable' || version === 'v-unhealthy') && unavailable) {
    sendJson(res, 503, {error: 'Service unavailable'})
  } else {
    sendJson(res, 200, getLocalReviews(productId))
  }
}

function handle (req, res, body) {
  const path = req.url.split('?')[0]
  if (/^\/ratings\/[0-9]*/.test(path)) {
    const productId = parseInt(path.split('/').pop())
    if (Number.isNaN(productId)) {
      sendJson(res, 400, {error: 'please provide numeric product ID'})
    } else if (req.method === 'POST') {
      let ratings
      try {
        ratings = JSON.parse(body)
      } catch (error) {
        sendJson(res, 400, {error: 'please provide valid ratings JSON'})
        return
      }
      if (version === 'v2') {
        sendJson(res, 501, {error: 'Post not implemented for database backed ratings'})
      } else {
        userAddedRatings[productId] = {id: productId, ratings: ratings}
        sendJson(res, 200, getLocalReviews(productId))
      }
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      serveRatings(res, productId)
    } else {
      sendJson(res, 405, {error: 'method not allowed'})
    }
  } else if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    if (healthy) {
      sendJson(res, 200, {status: 'Ratings is healthy'})
    } else {
      sendJson(res, 500, {status: 'Ratings is not healthy'})
    }
  } else {
    sendJson(res, 404, {error: 'not found'})
  }
}

const server = http.createServer((req, res) => {
  res.on('finish', () => {
    console.log('"%s %s HTTP/%s" %d host=%s', req.method, req.url, req.httpVersion, res.statusCode,
      req.headers.host || '-')
  })
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    try {
      handle(req, res, Buffer.concat(chunks).toString())
    } catch (err) {
      console.error(err)
      if (!res.headersSent) sendJson(res, 500, {error: 'internal error'})
    }
  })
})

process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  if (server.closeAllConnections) server.closeAllConnections() // Node 18.2+: idle and in-flight
  setTimeout(() => process.exit(0), 1000).unref()
})

server.listen(port, host, () => {
  console.log('ratings (%s) listening on http://%s:%d', version, host, server.address().port)
})
