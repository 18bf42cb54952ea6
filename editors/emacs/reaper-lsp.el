;;; reaper-lsp.el --- reaper-lsp AI completion and chat for eglot and lsp-mode  -*- lexical-binding: t; -*-

;; Version: 0.1
;; Package-Requires: ((emacs "28.1"))
;; Keywords: tools, convenience

;;; Commentary:

;; Starts the `reaper-lsp' language server from eglot or lsp-mode and adds four commands that
;; talk to it over `workspace/executeCommand':
;;
;;   M-x reaper-sign-in    sign in to GitHub Copilot; shows the code, copies it to the kill ring
;;   M-x reaper-sign-out   forget that sign-in
;;   M-x reaper-status     providers, sign-ins and the completion chain, in `*reaper-status*'
;;   M-x reaper-chat       ask a question about the current buffer; the answer streams into
;;                         `*reaper-chat*'
;;
;; Set-up (see README.md next to this file):
;;
;;   (require 'reaper-lsp)
;;   (reaper-lsp-eglot-setup)        ; eglot: reaper-lsp is the server of `reaper-lsp-modes'
;;   ;; or
;;   (reaper-lsp-lsp-mode-setup)     ; lsp-mode: reaper-lsp runs alongside each language's server
;;
;; Suggestions arrive as `completion-at-point' candidates (M-TAB, or company / corfu).

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'url-util)
(require 'json)

(declare-function eglot-current-server "eglot")
(declare-function eglot--server-info "eglot")
(declare-function jsonrpc-request "jsonrpc")
(declare-function jsonrpc-async-request "jsonrpc")
(declare-function lsp-register-client "lsp-mode")
(declare-function make-lsp-client "lsp-mode")
(declare-function lsp-stdio-connection "lsp-mode")
(declare-function lsp-activate-on "lsp-mode")
(declare-function lsp-find-workspace "lsp-mode")
(declare-function lsp-request "lsp-mode")
(declare-function lsp-request-async "lsp-mode")
(defvar eglot-server-programs)
(defvar lsp--cur-workspace)

(defgroup reaper-lsp nil
  "AI code completion and chat from the reaper-lsp language server."
  :group 'tools
  :prefix "reaper-lsp-")

(defcustom reaper-lsp-program '("reaper-lsp")
  "The command that starts the server, with its arguments."
  :type '(repeat string))

(defcustom reaper-lsp-modes '(prog-mode text-mode)
  "Major modes (and modes derived from them) that eglot runs reaper-lsp in.
eglot runs one server per buffer, so in these modes reaper-lsp replaces the
language's own server; list fewer modes to keep it, or use lsp-mode."
  :type '(repeat symbol))

(defcustom reaper-lsp-initialization-options nil
  "Sent as `initializationOptions': the completion, chat and privacy keys of
reaper.toml, as a plist.
Example: (:completion (:providers [\"copilot\" \"ollama\"])).
Endpoints and keys are read from reaper.toml and the environment only."
  :type 'sexp)

(defcustom reaper-lsp-sign-in-provider "copilot"
  "The account `reaper-sign-in' and `reaper-sign-out' act on: copilot or google."
  :type '(choice (const "copilot") (const "google")))

(defcustom reaper-lsp-browse-sign-in-page t
  "Whether `reaper-sign-in' opens the sign-in page with `browse-url'."
  :type 'boolean)

(defconst reaper-lsp--chat-buffer "*reaper-chat*")

;;;; Set-up

;;;###autoload
(defun reaper-lsp-eglot-setup ()
  "Make eglot start reaper-lsp in the buffers of `reaper-lsp-modes'."
  (with-eval-after-load 'eglot
    (add-to-list 'eglot-server-programs
                 (cons reaper-lsp-modes
                       (append reaper-lsp-program
                               (when reaper-lsp-initialization-options
                                 (list :initializationOptions
                                       reaper-lsp-initialization-options)))))
    (cl-defmethod eglot-handle-notification
      (_server (_method (eql reaper/status)) &key provider state message &allow-other-keys)
      (reaper-lsp--on-status provider state message))
    (cl-defmethod eglot-handle-notification
      (_server (_method (eql reaper/chatDelta)) &key delta &allow-other-keys)
      (reaper-lsp--on-chat-delta delta))))

;;;###autoload
(defun reaper-lsp-lsp-mode-setup ()
  "Register reaper-lsp with lsp-mode as an add-on server for every buffer.
Add-on servers start next to a language's own server; `lsp' (or `lsp-deferred'
in a mode hook) starts both."
  (with-eval-after-load 'lsp-mode
    (lsp-register-client
     (make-lsp-client
      :new-connection (lsp-stdio-connection (lambda () reaper-lsp-program))
      :activation-fn (lambda (&rest _) t)
      :server-id 'reaper-lsp
      ;; An add-on starts next to the buffer's main server instead of competing with it
      ;; on priority.
      :add-on? t
      :initialization-options (lambda () reaper-lsp-initialization-options)
      :notification-handlers
      (let ((handlers (make-hash-table :test #'equal)))
        (puthash "reaper/status"
                 (lambda (_workspace params)
                   (reaper-lsp--on-status (reaper-lsp--get params :provider)
                                          (reaper-lsp--get params :state)
                                          (reaper-lsp--get params :message)))
                 handlers)
        (puthash "reaper/chatDelta"
                 (lambda (_workspace params)
                   (reaper-lsp--on-chat-delta (reaper-lsp--get params :delta)))
                 handlers)
        handlers)))))

;;;; Talking to the server, through whichever client runs it here

(defun reaper-lsp--get (object key)
  "KEY (a keyword) of a JSON OBJECT.
OBJECT is a plist (eglot) or a hash table (lsp-mode)."
  (if (hash-table-p object)
      (gethash (substring (symbol-name key) 1) object)
    (plist-get object key)))

(defun reaper-lsp--lsp-mode-workspace ()
  "The lsp-mode workspace of reaper-lsp for this buffer, or nil."
  (and (bound-and-true-p lsp-mode)
       (fboundp 'lsp-find-workspace)
       (lsp-find-workspace 'reaper-lsp (buffer-file-name))))

(defun reaper-lsp--eglot-server ()
  "The eglot server of this buffer when it is reaper-lsp, or nil."
  (when-let ((server (and (bound-and-true-p eglot--managed-mode) (eglot-current-server))))
    (and (equal (plist-get (eglot--server-info server) :name) "reaper-lsp")
         server)))

(defun reaper-lsp--uri ()
  "The file: URI of this buffer's file, as both clients send it."
  (concat "file://" (url-hexify-string (expand-file-name (buffer-file-name))
                                       url-path-allowed-chars)))

(defun reaper-lsp--params (command arguments)
  (list :command command :arguments (vconcat arguments)))

(defun reaper-lsp-execute (command &rest arguments)
  "Run the server's COMMAND with ARGUMENTS and return its result."
  (let ((params (reaper-lsp--params command arguments)))
    (if-let ((workspace (reaper-lsp--lsp-mode-workspace)))
        (let ((lsp--cur-workspace workspace))
          (lsp-request "workspace/executeCommand" params))
      (if-let ((server (reaper-lsp--eglot-server)))
          (jsonrpc-request server :workspace/executeCommand params)
        (user-error "reaper-lsp is not running in this buffer (start it with M-x eglot or M-x lsp)")))))

(defun reaper-lsp-execute-async (command arguments on-result &optional on-error)
  "Run COMMAND with ARGUMENTS without waiting.
Call ON-RESULT with its result, or ON-ERROR with the error's message."
  (let ((params (reaper-lsp--params command arguments))
        (on-error (or on-error (lambda (text) (message "reaper-lsp: %s" text)))))
    (if-let ((workspace (reaper-lsp--lsp-mode-workspace)))
        (let ((lsp--cur-workspace workspace))
          (lsp-request-async "workspace/executeCommand" params on-result
                             :mode 'detached
                             :error-handler
                             (lambda (err) (funcall on-error (reaper-lsp--get err :message)))))
      (if-let ((server (reaper-lsp--eglot-server)))
          (jsonrpc-async-request server :workspace/executeCommand params
                                 :success-fn on-result
                                 :error-fn (lambda (err) (funcall on-error (plist-get err :message)))
                                 ;; A sign-in waits for the user; chat answers can be long.
                                 :timeout 900)
        (user-error "reaper-lsp is not running in this buffer (start it with M-x eglot or M-x lsp)")))))

(defun reaper-lsp--on-status (provider state message)
  (message "reaper-lsp: %s %s%s" provider state
           (if (and message (not (string-empty-p message))) (concat " — " message) "")))

;;;; Commands

(defun reaper-lsp--read-provider (prompt)
  "With a prefix argument, ask which account with PROMPT; nil means the default."
  (when current-prefix-arg
    (completing-read prompt '("copilot" "google") nil t nil nil reaper-lsp-sign-in-provider)))

;;;###autoload
(defun reaper-sign-in (&optional provider)
  "Sign in to PROVIDER: `reaper-lsp-sign-in-provider', or asked with a prefix.
For Copilot the one-time code is shown and copied to the kill ring; paste it on
the page opened in your browser.  The sign-in finishes on its own."
  (interactive (list (reaper-lsp--read-provider "Sign in to: ")))
  (let* ((provider (or provider reaper-lsp-sign-in-provider))
         (request (list :provider provider))
         (started (reaper-lsp-execute "reaper.signIn" request))
         (code (reaper-lsp--get started :userCode))
         (url (or (reaper-lsp--get started :verificationUri)
                  (reaper-lsp--get started :authorizeUrl))))
    (when code (kill-new code))
    ;; Neither eglot nor lsp-mode supports window/showDocument, so the server cannot open it.
    (when (and url reaper-lsp-browse-sign-in-page) (browse-url url))
    (message "%s" (if code
                      (format "reaper-lsp: enter code %s at %s (copied to the kill ring)" code url)
                    (format "reaper-lsp: finish signing in at %s" url)))
    (reaper-lsp-execute-async
     "reaper.signInConfirm" (list request)
     (lambda (result)
       (message "reaper-lsp: signed in to %s as %s" provider (reaper-lsp--get result :user)))
     (lambda (text) (message "reaper-lsp: %s" text)))
    started))

;;;###autoload
(defun reaper-sign-out (&optional provider)
  "Forget the sign-in to PROVIDER (default `reaper-lsp-sign-in-provider')."
  (interactive (list (reaper-lsp--read-provider "Sign out of: ")))
  (let ((provider (or provider reaper-lsp-sign-in-provider)))
    (reaper-lsp-execute "reaper.signOut" (list :provider provider))
    (message "reaper-lsp: signed out of %s" provider)))

(defun reaper-lsp--summary (status)
  "One line from the result of `reaper.status'."
  (let ((chain (append (reaper-lsp--get status :completionChain) nil))
        (sign-in (reaper-lsp--get status :signIn))
        signed)
    (dolist (account '(:github :google))
      (when-let ((info (and sign-in (reaper-lsp--get sign-in account))))
        (push (format "%s %s" (substring (symbol-name account) 1)
                      (if (eq (reaper-lsp--get info :signedIn) t) "signed in" "signed out"))
              signed)))
    (format "reaper-lsp %s · completion: %s · %s"
            (reaper-lsp--get status :version)
            (mapconcat #'identity chain " → ")
            (mapconcat #'identity (nreverse signed) ", "))))

;;;###autoload
(defun reaper-status ()
  "Show the server's status.
A summary goes to the echo area, the details to `*reaper-status*'."
  (interactive)
  (let ((status (reaper-lsp-execute "reaper.status")))
    (with-current-buffer (get-buffer-create "*reaper-status*")
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert (json-encode status))
        (json-pretty-print-buffer))
      (special-mode))
    (message "%s" (reaper-lsp--summary status))
    status))

(defun reaper-lsp--on-chat-delta (delta)
  (when-let ((buffer (get-buffer reaper-lsp--chat-buffer)))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (goto-char (point-max))
        (insert delta)))))

;;;###autoload
(defun reaper-chat (prompt)
  "Ask PROMPT about the current buffer; the answer streams into `*reaper-chat*'."
  (interactive "sAsk reaper-lsp: ")
  (let ((buffer (get-buffer-create reaper-lsp--chat-buffer))
        (request (append (list :prompt prompt)
                         (when buffer-file-name
                           (list :textDocument (list :uri (reaper-lsp--uri)))))))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (goto-char (point-max))
        (insert (format "\n> %s\n\n" prompt)))
      (special-mode))
    (display-buffer buffer)
    (let ((start (with-current-buffer buffer (point-max))))
      (reaper-lsp-execute-async
       "reaper.chat" (list request)
       (lambda (result)
         ;; The deltas already streamed the answer; the result is the whole text, which
         ;; replaces them so that the buffer holds exactly what the server answered.
         (with-current-buffer buffer
           (let ((inhibit-read-only t))
             (delete-region start (point-max))
             (goto-char (point-max))
             (insert (or (reaper-lsp--get result :text) "") "\n")))
         (message "reaper-lsp: chat answered by %s" (reaper-lsp--get result :provider)))))))

(provide 'reaper-lsp)
;;; reaper-lsp.el ends here
