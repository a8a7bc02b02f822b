/*
 * FacePass attendee page: a selfie in, the session's photos of that person out.
 *
 * Steps: read the chosen selfie, downscale it in a canvas (long side <= MAX_SIDE, JPEG), send it
 * with the session code to POST /api/v2/search, then show the photos best match first, or a
 * clear message for each kind of problem the API answers (application/problem+json `type`).
 * Vanilla JavaScript, no build step, no third-party code: the page must work offline on a LAN.
 */
(function () {
  'use strict';

  /** Longest side, in pixels, of the selfie that is uploaded; plenty for a face. */
  var MAX_SIDE = 1280;
  /** JPEG quality of the downscaled selfie. */
  var JPEG_QUALITY = 0.9;
  var SEARCH_URL = '/api/v2/search';

  var form = document.getElementById('search-form');
  var sessionInput = document.getElementById('session');
  var selfieInput = document.getElementById('selfie');
  var preview = document.getElementById('selfie-preview');
  var submit = document.getElementById('submit');
  var statusBox = document.getElementById('status');
  var results = document.getElementById('results');
  var heading = document.getElementById('results-heading');
  var gallery = document.getElementById('gallery');

  /** Object URL of the selfie preview, revoked when another selfie is chosen. */
  var previewUrl = null;
  /** Timer that re-enables the search button after a Retry-After wait. */
  var retryTimer = null;

  // ---- status messages -------------------------------------------------------------------

  /**
   * Show one message in the live region (screen readers announce it).
   * kind: 'busy' (with a spinner), 'info', 'success' or 'error'.
   */
  function setStatus(kind, text) {
    statusBox.className = 'status status-' + kind;
    statusBox.textContent = '';
    if (kind === 'busy') {
      var spinner = document.createElement('span');
      spinner.className = 'spinner';
      spinner.setAttribute('aria-hidden', 'true');
      statusBox.appendChild(spinner);
    }
    statusBox.appendChild(document.createTextNode(text));
    statusBox.dataset.kind = kind;
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
      return 'We could not find a face in your selfie. Try a clear, front-facing photo ' +
        'of your face in good light.';
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

  function showPreview() {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    var file = selfieInput.files && selfieInput.files[0];
    if (!file) {
      preview.hidden = true;
      preview.removeAttribute('src');
      return;
    }
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.hidden = false;
  }

  // ---- results ---------------------------------------------------------------------------

  function clearResults() {
    gallery.textContent = '';
    results.hidden = true;
  }

  /** File name for a downloaded photo: its id and the extension of its type. */
  function fileName(photoId, type) {
    var extension = { 'image/png': '.png', 'image/webp': '.webp', 'image/heic': '.heic' };
    return photoId.replace(/[^A-Za-z0-9._-]/g, '_') + (extension[type] || '.jpg');
  }

  /**
   * Save a photo. Its presigned URL is on another origin, where a link's `download`
   * attribute is ignored, so fetch it and save the bytes; if the storage does not allow
   * that (CORS), open the photo instead and let the person save it from there.
   */
  function download(result, button) {
    button.disabled = true;
    fetch(result.url, { credentials: 'omit', referrerPolicy: 'no-referrer' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.blob();
      })
      .then(function (blob) {
        var url = URL.createObjectURL(blob);
        var link = document.createElement('a');
        link.href = url;
        link.download = fileName(result.photo_id, blob.type);
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      })
      .catch(function () {
        window.open(result.url, '_blank', 'noopener,noreferrer');
      })
      .finally(function () {
        button.disabled = false;
      });
  }

  /**
   * Square thumbnails crop the photo: keep the matched face (its bbox, in the photo's pixels)
   * in view rather than the photo's centre.
   */
  function centerOnFace(img, face) {
    if (!face || !face.bbox || !img.naturalWidth || !img.naturalHeight) return;
    var box = face.bbox;
    var x = ((box[0] + box[2]) / 2 / img.naturalWidth) * 100;
    var y = ((box[1] + box[3]) / 2 / img.naturalHeight) * 100;
    var clamp = function (v) { return Math.min(100, Math.max(0, v)).toFixed(1) + '%'; };
    img.style.objectPosition = clamp(x) + ' ' + clamp(y);
  }

  /** One gallery item: the thumbnail (a link to the full photo) and its actions. */
  function photoItem(result, index, count) {
    var item = document.createElement('li');
    item.className = 'photo';
    item.dataset.photoId = result.photo_id;
    item.dataset.similarity = String(result.similarity);

    var link = document.createElement('a');
    link.href = result.url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.className = 'thumb';
    var img = document.createElement('img');
    img.src = result.url;
    img.alt = 'Photo ' + (index + 1) + ' of ' + count + (index === 0 ? ', best match' : '') +
      ' (opens full size in a new tab)';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.referrerPolicy = 'no-referrer';
    img.addEventListener('load', function () { centerOnFace(img, result.face); });
    link.appendChild(img);
    item.appendChild(link);

    var actions = document.createElement('div');
    actions.className = 'actions';
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'Download';
    button.setAttribute('aria-label', 'Download photo ' + (index + 1));
    button.addEventListener('click', function () { download(result, button); });
    actions.appendChild(button);
    item.appendChild(actions);
    return item;
  }

  function showResults(body) {
    var found = (body.results || []).slice().sort(function (a, b) {
      return b.similarity - a.similarity;
    });
    var extra = '';
    if (body.query_face && body.query_face.faces_in_selfie > 1) {
      extra = ' Your selfie shows ' + body.query_face.faces_in_selfie +
        ' faces; we searched for the largest one.';
    }
    if (found.length === 0) {
      clearResults();
      setStatus('info', 'No photos of you were found in this session yet. Photos may still ' +
        'be arriving: try again later, and check the session code.' + extra);
      return;
    }
    gallery.textContent = '';
    found.forEach(function (result, index) {
      gallery.appendChild(photoItem(result, index, found.length));
    });
    heading.textContent = 'Your photos (' + found.length + ')';
    results.hidden = false;
    setStatus('success', 'Found ' + found.length + (found.length === 1 ? ' photo' : ' photos') +
      ' of you.' + extra);
  }

  // ---- the search ------------------------------------------------------------------------

  function search(event) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    var session = sessionInput.value.trim();
    var file = selfieInput.files[0];
    clearResults();
    setBusy(true);
    setStatus('busy', 'Preparing your selfie…');
    downscale(file)
      .then(function (selfie) {
        setStatus('busy', 'Searching for your photos…');
        var body = new FormData();
        body.append('session_id', session);
        body.append('file', selfie, 'selfie.jpg');
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

  selfieInput.addEventListener('change', showPreview);
  form.addEventListener('submit', search);
})();
