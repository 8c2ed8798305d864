// Connects to the room's socket, shows what arrives, sends what is typed.
const room = document.body.dataset.room
const status = document.getElementById('status')
const messages = document.getElementById('messages')
const form = document.getElementById('send')
const text = document.getElementById('text')
const name = document.getElementById('name')

const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/chat/${encodeURIComponent(room)}`)

socket.addEventListener('open', () => {
  status.textContent = 'connected'
  status.className = 'open'
})
socket.addEventListener('close', (event) => {
  status.textContent = `disconnected (${event.code})`
  status.className = 'closed'
})
socket.addEventListener('message', (event) => {
  const message = JSON.parse(event.data)
  const item = document.createElement('li')
  const who = document.createElement('b')
  // textContent, never innerHTML: a message is text, whatever it contains.
  who.textContent = message.name
  item.append(who, `: ${message.text}`)
  messages.append(item)
  item.scrollIntoView({ block: 'end' })
})

form.addEventListener('submit', (event) => {
  event.preventDefault()
  if (text.value.trim() === '' || socket.readyState !== WebSocket.OPEN) return
  socket.send(JSON.stringify({ name: name.value, text: text.value }))
  text.value = ''
})
