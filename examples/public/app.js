// Runs once the page is parsed: says so, then asks the server for a greeting.
document.getElementById('status').textContent = 'The script ran.'

fetch('/api/hello')
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
  .then((data) => {
    document.getElementById('message').textContent = data.message
  })
  .catch((error) => {
    document.getElementById('message').textContent = `No greeting: ${error.message}`
  })
