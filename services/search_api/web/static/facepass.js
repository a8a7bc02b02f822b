/*
 * FacePass attendee page: a selfie in, the session's photos of that person out.
 *
 * Steps: read the chosen selfies (1 to MAX_SELFIES of one person), downscale each in a canvas
 * (long side <= MAX_SIDE, JPEG), send them with the session code to POST /api/v2/search, then
 * show the photos best match first as small thumbnails (tap: the screen-size preview; Download:
 * the original, or the preview when the event withholds originals), or a clear message for each
 * kind of problem the API answers (application/problem+json `type`). The status line and the
 * gallery are gallery.js's (loaded before); after each search answered, a `facepass:searched`
 * event hands the selfies it sent to notify.js ("notify me when new photos of me arrive").
 * Vanilla JavaScript, no build step, no third-party code: the page must work offline on a LAN.
 */
(function () {
  'use strict';

  /** Longest side, in pixels, of the selfie that is uploaded; plenty for a face. */
  var MAX_SIDE = 1280;
  /** JPEG quality of the downscaled selfie. */
  var JPEG_QUALITY = 0.9;
  var SEARCH_URL = '/api/v2/search';
  /** Most selfies one search takes (the API's limit). */
  var MAX_SELFIES = 3;

  var form = document.getElementById('search-form');
  var sessionInput = document.getElementById('session');
  var selfieInput = document.getElementById('selfie');
  var selfieList = document.getElementById('selfie-list');
  var selfieCount = document.getElementById('selfie-count');
  var submit = document.getElementById('submit');
  var statusBox = document.getElementById('status');
  var FacePass = window.FacePass;

  /** The chosen selfies: {file, url} (url: an object URL of its preview, revoked on removal). */
  var selfies = [];
  /** Timer that re-enables the search button after a Retry-After wait. */
  var retryTimer = null;

  // ---- status messages -------------------------------------------------------------------

  /** Show one message in the live region: 'busy', 'info', 'success' or 'error'. */
  function setStatus(kind, text) {
    FacePass.setStatus(statusBox, kind, text);
  }

  function setBusy(busy) {
    form.setAttribute('aria-busy', busy ? 'true' : 'false');
    submit.disabled = busy || retryTimer !== null;
  }

  /** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
  function retryAfterSeconds(response) {
    var value = response.headers.get('Retry-After');
    if (!value) return null;
    if (/^\d+$/.test(value.trim())) return parseInt(value, 10);
    var date = Date.parse(value);
    return isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
  }

  function inSeconds(seconds) {
    if (seconds === null) return 'in a minute';
    return 'in ' + seconds + (seconds === 1 ? ' second' : ' seconds');
  }

  /** Keep the search button off until the server's Retry-After has passed. */
  function holdSearchFor(seconds) {
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      submit.disabled = false;
      setStatus('info', 'You can search again now.');
    }, (seconds === null ? 60 : seconds) * 1000);
    submit.disabled = true;
  }

  /** The message for an error answer of the API (`problem` is its JSON body, if any). */
  function problemMessage(response, problem) {
    var type = (problem && problem.type) || '';
    var slug = type.replace(/^.*\/problems\//, '');
    var status = response.status;
    if (slug === 'no-face') {
      var which = problem && problem.selfie ? ' number ' + problem.selfie : '';
      return 'We could not find a face in your selfie' + which + '. Try a clear, ' +
        'front-facing photo of your face in good light' + (which ? ', or remove that one.' : '.');
    }
    if (status === 429 || slug === 'rate-limited') {
      var wait = retryAfterSeconds(response);
      holdSearchFor(wait);
      return 'Too many searches from your network. Please try again ' + inSeconds(wait) + '.';
    }
    if (status === 503 || status === 502 || status === 504 || slug === 'service-unavailable') {
      return 'The photo search is unavailable right now. Please try again ' +
        inSeconds(retryAfterSeconds(response)) + '.';
    }
    if (status === 413 || slug === 'image-too-large' || slug === 'payload-too-large') {
      return 'That picture is too large. Please choose a smaller photo.';
    }
    if (status === 415 || slug === 'unsupported-image' || slug === 'corrupt-image') {
      return 'That file is not a picture we can read. Please choose a JPEG or PNG photo.';
    }
    if (slug === 'validation-error') {
      return 'Please check the session code. ' + ((problem && problem.detail) || '');
    }
    return 'Something went wrong (error ' + status + '). Please try again.';
  }

  // ---- the selfie ------------------------------------------------------------------------

  /** Decode an image file into something a canvas can draw, upright (EXIF orientation). */
  function decode(file) {
    if (typeof createImageBitmap === 'function') {
      return createImageBitmap(file, { imageOrientation: 'from-image' }).catch(function () {
        return decodeWithImg(file);
      });
    }
    return decodeWithImg(file);
  }

  function decodeWithImg(file) {
    return new Promise(function (resolve, reject) {
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = function () { URL.revokeObjectURL(url); reject(new Error('undecodable')); };
      img.src = url;
    });
  }

  /**
   * A JPEG of the selfie with its long side at most MAX_SIDE. Re-encoding also drops the
   * file's metadata (EXIF: GPS position, camera). If this browser cannot decode the file
   * (e.g. HEIC outside Safari), the original is sent: the server reads more formats.
   */
  function downscale(file) {
    return decode(file).then(function (image) {
      var width = image.naturalWidth || image.width;
      var height = image.naturalHeight || image.height;
      var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
      var canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(width * scale));
      canvas.height = Math.max(1, Math.round(height * scale));
      canvas.getContext('2d').drawImage(image, 0, 0, canvas.width, canvas.height);
      if (typeof image.close === 'function') image.close();
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) { resolve(blob || file); }, 'image/jpeg', JPEG_QUALITY);
      });
    }, function () {
      return file;
    });
  }

  /** Show the chosen selfies, each with a Remove button; the picker takes more until full. */
  function showSelfies() {
    selfieList.textContent = '';
    selfies.forEach(function (selfie, index) {
      var item = document.createElement('li');
      var img = document.createElement('img');
      img.className = 'preview';
      img.src = selfie.url;
      img.alt = 'Selfie ' + (index + 1) + ' you chose';
      var remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', 'Remove selfie ' + (index + 1));
      remove.addEventListener('click', function () {
        URL.revokeObjectURL(selfie.url);
        selfies.splice(index, 1);
        showSelfies();
      });
      item.appendChild(img);
      item.appendChild(remove);
      selfieList.appendChild(item);
    });
    selfieList.hidden = selfies.length === 0;
    // The picker is required only while no selfie is chosen, and off once there are enough.
    selfieInput.required = selfies.length === 0;
    selfieInput.disabled = selfies.length >= MAX_SELFIES;
    selfieCount.textContent = selfies.length === 0 ? '' : selfies.length + ' of ' +
      MAX_SELFIES + ' selfies chosen' + (selfies.length < MAX_SELFIES ?
        ': add another (a different angle or light) to find more photos.' : '.');
  }

  function addSelfies() {
    Array.prototype.slice.call(selfieInput.files || []).forEach(function (file) {
      if (selfies.length < MAX_SELFIES) {
        selfies.push({ file: file, url: URL.createObjectURL(file) });
      }
    });
    selfieInput.value = '';  // the same picker takes the next one
    showSelfies();
  }

  // ---- results ---------------------------------------------------------------------------

  /** Tell notify.js (if loaded) what happened: `facepass:<name>` with `detail`. */
  function announce(name, detail) {
    document.dispatchEvent(new CustomEvent('facepass:' + name, { detail: detail }));
  }

  function showResults(body) {
    var extra = '';
    if (body.query_face && body.query_face.faces_in_selfie > 1) {
      extra = ' Your selfie shows ' + body.query_face.faces_in_selfie +
        ' faces; we searched for the largest one.';
    }
    var count = FacePass.gallery.show(body.results);
    if (count === 0) {
      setStatus('info', 'No photos of you were found in this session yet. Photos may still ' +
        'be arriving: try again later, and check the session code.' + extra);
      return;
    }
    setStatus('success', 'Found ' + count + (count === 1 ? ' photo' : ' photos') +
      ' of you.' + extra);
  }

  // ---- the search ------------------------------------------------------------------------

  function search(event) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    var session = sessionInput.value.trim();
    /** The selfies as uploaded (downscaled): "notify me" sends these same ones. */
    var sent = [];
    FacePass.gallery.clear();
    announce('search-started', { sessionId: session });
    setBusy(true);
    setStatus('busy', selfies.length > 1 ? 'Preparing your selfies…' : 'Preparing your selfie…');
    Promise.all(selfies.map(function (selfie) { return downscale(selfie.file); }))
      .then(function (prepared) {
        sent = prepared;
        setStatus('busy', 'Searching for your photos…');
        var body = new FormData();
        body.append('session_id', session);
        prepared.forEach(function (blob, index) {
          body.append('file', blob, 'selfie-' + (index + 1) + '.jpg');
        });
        return fetch(SEARCH_URL, {
          method: 'POST',
          body: body,
          headers: { Accept: 'application/json, application/problem+json' },
        });
      })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (json) {
          if (response.ok && json) {
            showResults(json);
            announce('searched', {
              sessionId: session,
              selfies: sent,
              found: (json.results || []).length,
            });
          } else {
            setStatus('error', problemMessage(response, json));
          }
        });
      })
      .catch(function () {
        setStatus('error', 'Could not reach the photo search. Check your connection and try ' +
          'again.');
      })
      .finally(function () {
        setBusy(false);
      });
  }

  selfieInput.addEventListener('change', addSelfies);
  form.addEventListener('submit', search);
})();
